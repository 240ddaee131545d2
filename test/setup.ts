// Runs before each test file (storage is isolated per file): bring D1 to the latest schema.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll } from "vitest";
import { queueWorkDone, trackQueueWork } from "./helpers/queue-work";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

// Requests end before their waitUntil work (a verification email to an unreachable host in a
// file without emulators, say), and that work may still log. A log that reaches vitest while it
// tears the file's worker down fails the whole run with every test green
// (vitest-dev/vitest#11153, "Closing rpc while onUserConsoleLog was pending"). Background work
// here fails or finishes within milliseconds; give it a moment before the file closes.
// Then the file's queue work (helpers/queue-work.ts): jobs its tests sent to a real queue, and
// what those jobs sent on, end before the file closes instead of failing as it closes.
trackQueueWork();
afterAll(async () => {
  await new Promise((resolve) => setTimeout(resolve, 250));
  await queueWorkDone(15_000);
}, 20_000);

// Nothing here may reach the internet. Files that do not route outbound fetches to the
// emulators (helpers/outbound.ts) still make some: a verification email at registration, a job
// that runs after the file's last test. Those fail at once here instead of waiting on a DNS
// lookup of a `.test` host, which can take seconds and then log after the file has closed.
// useEmulators() spies on this fetch for each test and puts it back after.
globalThis.fetch = async (input: RequestInfo | URL) => {
  const url = input instanceof Request ? input.url : String(input);
  throw new TypeError(`tests are offline: no emulator routes ${url} in this test`);
};
