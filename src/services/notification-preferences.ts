/**
 * Who hears about what, and how (API.md §5b, issue 10 item 2): per notification type, three
 * channels — in-app (the list and live sockets), email, and Web Push — plus an email digest
 * setting and the user's time zone (digests and dates in emails use it).
 *
 * Decisions (documented in docs/api.md):
 * - Defaults (NOTIFICATION_DEFAULTS): everything in-app; push for what is worth an interruption
 *   (replies, mentions, due reminders, identification results, community answers, events starting);
 *   email for what people would otherwise miss (mentions, identification failures, consensus on
 *   your request, blog replies, event changes) — gathered into the daily digest unless the user
 *   picks `immediate`.
 * - Security mail (password changed, lockout, a new sign-in method) is always emailed at once and
 *   cannot be turned off: such types accept only `email: true`.
 * - A user without a row has the defaults; a PUT stores only what differs from them.
 */
import { and, eq, sql } from "drizzle-orm";
import { database } from "../db/client";
import { notificationPreferences } from "../db/schema";
import type { Bindings } from "../env";
import { AppError, type FieldErrors } from "../lib/errors";

export const CHANNELS = ["in_app", "email", "push"] as const;
export type Channel = (typeof CHANNELS)[number];
export type ChannelChoice = Record<Channel, boolean>;

export const DIGESTS = ["immediate", "daily", "weekly", "off"] as const;
export type Digest = (typeof DIGESTS)[number];

const on = (in_app: boolean, email: boolean, push: boolean): ChannelChoice => ({ in_app, email, push });

/** Every type a preference can be set for, with its default channels. */
export const NOTIFICATION_DEFAULTS = {
  forum_reply: on(true, false, true),
  forum_mention: on(true, true, true),
  care_reminder: on(true, false, true),
  identification_completed: on(true, false, true),
  identification_failed: on(true, true, true),
  community_proposal: on(true, false, true),
  community_agreement: on(true, false, false),
  community_consensus: on(true, true, true),
  blog_comment_approved: on(true, false, false),
  blog_comment_reply: on(true, true, false),
  calendar_event_changed: on(true, true, false),
  calendar_event_starting: on(true, false, true),
  security: on(true, true, false),
} as const satisfies Record<string, ChannelChoice>;
export type PreferenceType = keyof typeof NOTIFICATION_DEFAULTS;
export const PREFERENCE_TYPES = Object.keys(NOTIFICATION_DEFAULTS) as PreferenceType[];

/** Types whose email cannot be turned off. */
export const ALWAYS_EMAILED: readonly PreferenceType[] = ["security"];

export interface Preferences {
  types: Record<PreferenceType, ChannelChoice>;
  digest: Digest;
  time_zone: string;
}

export const DEFAULT_DIGEST: Digest = "daily";
export const DEFAULT_TIME_ZONE = "UTC";
/** Compare-and-swap rounds `updatePreferences` tries before answering 409. */
const MAX_UPDATE_ATTEMPTS = 5;

/**
 * Zones whose name this runtime's time-zone data (ICU, following CLDR) still spells the old way
 * while the IANA database has renamed them: CLDR keeps its first spelling for stability, so
 * `Intl` answers `Asia/Calcutta` even for `Asia/Kolkata`. Keyed by the runtime's name.
 */
const RENAMED: Readonly<Record<string, string>> = {
  "Africa/Asmera": "Africa/Asmara",
  "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
  "America/Catamarca": "America/Argentina/Catamarca",
  "America/Coral_Harbour": "America/Atikokan",
  "America/Cordoba": "America/Argentina/Cordoba",
  "America/Godthab": "America/Nuuk",
  "America/Indianapolis": "America/Indiana/Indianapolis",
  "America/Jujuy": "America/Argentina/Jujuy",
  "America/Louisville": "America/Kentucky/Louisville",
  "America/Mendoza": "America/Argentina/Mendoza",
  "Asia/Calcutta": "Asia/Kolkata",
  "Asia/Katmandu": "Asia/Kathmandu",
  "Asia/Rangoon": "Asia/Yangon",
  "Asia/Saigon": "Asia/Ho_Chi_Minh",
  "Atlantic/Faeroe": "Atlantic/Faroe",
  "Europe/Kiev": "Europe/Kyiv",
  "Pacific/Enderbury": "Pacific/Kanton",
  "Pacific/Ponape": "Pacific/Pohnpei",
  "Pacific/Truk": "Pacific/Chuuk",
};

/** The runtime's name for `zone` (any case, any alias), or null when it does not know it. */
function runtimeName(zone: string): string | null {
  try {
    return new Intl.DateTimeFormat("en", { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/**
 * The one name `zone` is saved and answered as, or null when it is not an IANA time zone name this
 * runtime knows (e.g. Europe/Berlin). Any case (`europe/berlin`) and any alias a device may report
 * (`US/Pacific`, `NZ-CHAT`, `Asia/Calcutta`) are accepted and become the zone's own name
 * (`Europe/Berlin`, `America/Los_Angeles`, `Pacific/Chatham`, `Asia/Kolkata`); names of their own
 * such as `EST5EDT` stay. Not a UTC offset (+05:30): the name is what follows summer time.
 */
export function canonicalTimeZone(zone: string): string | null {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+){0,2}$/.test(zone)) return null;
  const name = runtimeName(zone);
  if (name === null) return null;
  const renamed = RENAMED[name];
  // The IANA spelling only if this runtime knows it as the same zone (older time-zone data may not).
  return renamed !== undefined && runtimeName(renamed) === name ? renamed : name;
}

/** Canonical names of the zones this isolate has read (null: unknown); bounded (stored names are few). */
const known = new Map<string, string | null>();

/**
 * `canonicalTimeZone` for a name read back from the database, remembered: every reminder read and
 * every preferences answer asks it, and each answer costs up to two `Intl` formatters.
 */
export function knownTimeZone(zone: string): string | null {
  let name = known.get(zone);
  if (name === undefined) {
    name = canonicalTimeZone(zone);
    if (known.size >= 1000) known.clear();
    known.set(zone, name);
  }
  return name;
}

/**
 * A saved zone as answered: rows saved before names were made canonical may hold `europe/berlin`
 * or `US/Pacific` (Intl reads them all, so digests always worked); they answer as the canonical
 * name, with no migration. A name this runtime no longer knows is answered as saved.
 */
function savedZone(zone: string): string {
  return knownTimeZone(zone) ?? zone;
}

function withDefaults(overrides: Record<string, Partial<ChannelChoice>>): Record<PreferenceType, ChannelChoice> {
  return Object.fromEntries(
    PREFERENCE_TYPES.map((type) => {
      const chosen = { ...NOTIFICATION_DEFAULTS[type], ...(overrides[type] ?? {}) };
      if (ALWAYS_EMAILED.includes(type)) chosen.email = true;
      return [type, chosen];
    }),
  ) as Record<PreferenceType, ChannelChoice>;
}

export async function getPreferences(env: Bindings, userId: string): Promise<Preferences> {
  return preferencesOf(await database(env).select().from(notificationPreferences).where(eq(notificationPreferences.userId, userId)).get());
}

/** A user's stored choices (none: never changed) with every default filled in. */
export function preferencesOf(row: typeof notificationPreferences.$inferSelect | undefined): Preferences {
  return {
    types: withDefaults(row?.types ?? {}),
    digest: row?.digest ?? DEFAULT_DIGEST,
    time_zone: savedZone(row?.timeZone ?? DEFAULT_TIME_ZONE),
  };
}

export interface PreferencesUpdate {
  types?: Record<string, Record<string, unknown>>;
  digest?: string;
  time_zone?: string;
}

/**
 * Applies a change: `types` may name some types and some channels (the rest stay as they are).
 * Everything is checked first — an unknown type or channel, a non-boolean, turning off security
 * email, an unknown digest or time zone — and one 400 names every problem; nothing is written.
 */
export async function updatePreferences(env: Bindings, userId: string, update: PreferencesUpdate): Promise<Preferences> {
  const errors: FieldErrors = {};
  const add = (key: string, message: string) => (errors[key] ??= []).push(message);
  for (const [type, channels] of Object.entries(update.types ?? {})) {
    if (!(PREFERENCE_TYPES as string[]).includes(type)) {
      add(`types.${type}`, `Unknown notification type. Use one of: ${PREFERENCE_TYPES.join(", ")}.`);
      continue;
    }
    if (typeof channels !== "object" || channels === null || Array.isArray(channels)) {
      add(`types.${type}`, 'Must be an object of channels, e.g. {"email": false}.');
      continue;
    }
    for (const [channel, value] of Object.entries(channels)) {
      if (!(CHANNELS as readonly string[]).includes(channel))
        add(`types.${type}.${channel}`, `Unknown channel. Use one of: ${CHANNELS.join(", ")}.`);
      else if (typeof value !== "boolean") add(`types.${type}.${channel}`, "Must be true or false.");
      else if (channel === "email" && value === false && ALWAYS_EMAILED.includes(type as PreferenceType))
        add(`types.${type}.email`, "Security email cannot be turned off.");
    }
  }
  if (update.digest !== undefined && !(DIGESTS as readonly string[]).includes(update.digest))
    add("digest", `Use one of: ${DIGESTS.join(", ")}.`);
  const timeZone = update.time_zone === undefined ? undefined : canonicalTimeZone(update.time_zone);
  if (timeZone === null) add("time_zone", "Not a known IANA time zone (e.g. Europe/Berlin, America/New_York, UTC).");
  if (Object.keys(errors).length > 0) throw new AppError("VALIDATION_ERROR", 400, "Some preferences are not valid.", errors);

  const db = database(env);
  const np = notificationPreferences;
  // Read, merge, then write only if the row is still what was read (compare and swap), else read
  // again: a plain write of the merged row undid a change that landed in between — a one-click
  // unsubscribe beside a PUT from the app came back on, and the reader kept getting that email.
  for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt += 1) {
    const current = await db
      .select({ types: np.types, typesText: sql<string>`${np.types}`, digest: np.digest, timeZone: np.timeZone })
      .from(np)
      .where(eq(np.userId, userId))
      .get();
    const merged = withDefaults(current?.types ?? {});
    for (const [type, channels] of Object.entries(update.types ?? {})) Object.assign(merged[type as PreferenceType], channels);
    // Store only what differs from the defaults.
    const overrides: Record<string, Partial<ChannelChoice>> = {};
    for (const type of PREFERENCE_TYPES) {
      for (const channel of CHANNELS) {
        if (merged[type][channel] !== NOTIFICATION_DEFAULTS[type][channel]) (overrides[type] ??= {})[channel] = merged[type][channel];
      }
    }
    const values = {
      userId,
      types: overrides,
      digest: (update.digest as Digest | undefined) ?? current?.digest ?? DEFAULT_DIGEST,
      timeZone: timeZone ?? current?.timeZone ?? DEFAULT_TIME_ZONE,
      updatedAt: new Date().toISOString(),
    };
    const written = current
      ? await db
          .update(np)
          .set({ types: values.types, digest: values.digest, timeZone: values.timeZone, updatedAt: values.updatedAt })
          .where(
            and(
              eq(np.userId, userId),
              sql`${np.types} = ${current.typesText}`,
              eq(np.digest, current.digest),
              eq(np.timeZone, current.timeZone),
            ),
          )
          .returning({ userId: np.userId })
          .get()
      : await db.insert(np).values(values).onConflictDoNothing().returning({ userId: np.userId }).get();
    if (written) return { types: withDefaults(overrides), digest: values.digest, time_zone: savedZone(values.timeZone) };
  }
  throw new AppError("CONFLICT", 409, "Your preferences were changed at the same moment; try again.");
}

/**
 * Whether preferences `prefs` take notifications of `type` by email (security: always, as
 * `withDefaults` keeps it); a type outside the preferences (a digest) is not one of them.
 */
export function emailWanted(prefs: Preferences, type: string): boolean {
  return prefs.types[type as PreferenceType]?.email === true;
}

/** Whether `userId` wants `type` on `channel` (security email: always). */
export async function wants(env: Bindings, userId: string, type: PreferenceType, channel: Channel): Promise<boolean> {
  if (channel === "email" && ALWAYS_EMAILED.includes(type)) return true;
  return (await getPreferences(env, userId)).types[type][channel];
}
