// Security review finding, fixed — this test keeps it fixed. The finding: the account lockout is check-then-act. signInWithPassword asks the lockout
// bucket "locked?" (assertNotLocked), verifies the password, and only then records the failure.
// Guesses sent concurrently (from many addresses, so the per-address limit is not the brake) all
// pass the check before any failure is counted, so far more than LOCKOUT_THRESHOLD (10) passwords
// are actually tried against the account.
import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { registerWeb } from "../helpers/users";

const THRESHOLD = 10;
useEmulators();

describe("account lockout under concurrency", () => {
  it("a burst of concurrent guesses gets no more than LOCKOUT_THRESHOLD passwords checked", async () => {
    const victim = await registerWeb();
    const burst = 40;
    const answers = await Promise.all(
      Array.from({ length: burst }, (_, i) =>
        call("/api/v1/auth/token/", { json: { username: victim.username, password: `Wrong-Guess-${i}-Xy!` } }),
      ),
    );
    const statuses = answers.map((r) => r.status);
    const checked = statuses.filter((s) => s === 401).length; // each 401 = one password actually verified
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    expect(checked, `passwords verified in one burst: ${checked}`).toBeLessThanOrEqual(THRESHOLD);
  });
});
