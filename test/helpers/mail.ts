/** Reading what the Worker mailed, from the email emulator's outbox. */
import type { EmailEmulator } from "../../emulators/email";
import { eventually } from "./wait";

/** Waits for a mail to `address` whose subject matches. */
export function mailTo(outbox: Pick<EmailEmulator, "outbox">, address: string, subject: RegExp) {
  return eventually(() =>
    outbox.outbox.find((m) => m.to.some((to) => to.toLowerCase() === address.toLowerCase()) && subject.test(m.subject)),
  );
}

/** The token a mail spells out after its label (`Reset token: …`, `Confirmation token: …`). */
export function tokenIn(
  text: string | null,
  label: "Reset token" | "Confirmation token" | "Two-factor reset token" | "Cancel token",
): string {
  const match = new RegExp(`${label}: (\\S+)`).exec(text ?? "");
  if (!match) throw new Error(`no ${label} in the mail`);
  return match[1]!;
}
