// Runs before each test file (storage is isolated per file): bring D1 to the latest schema.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll } from "vitest";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

// Requests end before their waitUntil work (a verification email to an unreachable host in a
// file without emulators, say), and that work may still log. A log that reaches vitest while it
// tears the file's worker down fails the whole run with every test green
// (vitest-dev/vitest#11153, "Closing rpc while onUserConsoleLog was pending"). Background work
// here fails or finishes within milliseconds; give it a moment before the file closes.
afterAll(() => new Promise((resolve) => setTimeout(resolve, 250)));
