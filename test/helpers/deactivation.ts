/**
 * An account deactivated by an admin while its own request was on its way: the race the
 * deactivation tests (test/security-review/*deactivation-race*) stage, and what the write answers.
 */
import { env } from "cloudflare:workers";
import { setAccountActive } from "../../src/services/accounts";
import { envRacingFirstBatch, envRacingStatement } from "./racing-env";

/** An `env` on which `who` is deactivated just before the write's first batch. */
export const deactivatedBeforeBatch = (who: { id: string }) => envRacingFirstBatch(() => setAccountActive(env, who.id, false));

/** An `env` on which `who` is deactivated just before the statement matching `sql` runs. */
export const deactivatedBefore = (sql: RegExp, who: { id: string }) => envRacingStatement(sql, () => setAccountActive(env, who.id, false));

/** A write refused because its account was deactivated meanwhile: as the token now is. */
export const refusedDeactivated = { status: 401, code: "TOKEN_INVALID" };
