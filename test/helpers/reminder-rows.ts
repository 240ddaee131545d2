import type { ReminderRow } from "../../src/services/reminders";

/** A reminder row as the service reads it (weekly, 2 March 2026 08:00 UTC, owner in UTC), for pure schedule tests. */
export function reminderRow(over: Partial<ReminderRow>): ReminderRow {
  return {
    id: "00000000-0000-4000-8000-000000000001",
    userId: "u",
    plantId: "00000000-0000-4000-8000-0000000000aa",
    plantName: "Fern",
    reminderType: "water",
    frequency: "weekly",
    customIntervalDays: null,
    title: "Water Fern",
    nextDueAt: "2026-03-02T08:00:00.000Z",
    anchorDay: 2,
    localTimeMs: null,
    isActive: true,
    streak: 0,
    lastCompletedAt: null,
    createdAt: "",
    updatedAt: "",
    timeZone: "UTC",
    ...over,
  };
}
