import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { unstable_readConfig } from "wrangler";

type WranglerQueueConsumer = { queue: string; max_batch_size?: number; max_batch_timeout?: number; dead_letter_queue?: string };

// Tests run inside workerd with the real bindings of wrangler.toml (local D1, KV, R2, Queues,
// Durable Objects). Outbound provider calls go to *.emulator.test hosts, which test/setup.ts
// routes to the emulators in emulators/ — the same handlers `npm start` serves over HTTP.
export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  // wrangler.toml's queue consumers without their retries: a failed message goes to its
  // dead-letter queue at once instead of coming back 5 s to minutes later (its backoff), into
  // later tests or after the file has closed. The tests that check retries deliver their batches
  // themselves (helpers/queue.ts) and read the outcome. Only the tests run this way; the
  // environments keep wrangler.toml's. test/helpers/queue-work.ts waits for this work per file.
  const { queues } = unstable_readConfig({ config: "./wrangler.toml" });
  const consumers: WranglerQueueConsumer[] = queues.consumers ?? [];
  const producers: { binding: string; queue: string }[] = queues.producers ?? [];
  const queueConsumers = Object.fromEntries(
    consumers.map((c) => [
      c.queue,
      { maxBatchSize: c.max_batch_size, maxBatchTimeout: c.max_batch_timeout, deadLetterQueue: c.dead_letter_queue, maxRetries: 0 },
    ]),
  );
  const testQueues = {
    producers: producers.map(({ binding, queue }) => ({ binding, queue })),
    deadLetterQueues: Object.fromEntries(consumers.flatMap((c) => (c.dead_letter_queue ? [[c.queue, c.dead_letter_queue]] : []))),
  };
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          queueConsumers,
          bindings: {
            ENVIRONMENT: "test",
            TEST_QUEUES: testQueues,
            // The tests' own public URL (test/helpers/http.ts BASE): links and redirect URIs use it.
            PUBLIC_API_URL: "https://api.test",
            LOG_LEVEL: "warn",
            TEST_MIGRATIONS: migrations,
            PLANT_ID_API_URL: "https://plant-id.emulator.test/v3",
            PLANTNET_API_URL: "https://plantnet.emulator.test",
            TREFLE_API_URL: "https://trefle.emulator.test/api/v1",
            OPENAI_API_URL: "https://openai.emulator.test/v1",
            EMAIL_API_URL: "https://email.emulator.test",
            PLANT_ID_API_KEY: "emulator-key",
            PLANTNET_API_KEY: "emulator-key",
            TREFLE_API_KEY: "emulator-key",
            OPENAI_API_KEY: "emulator-key",
            EMAIL_API_KEY: "emulator-key",
            VAPID_PUBLIC_KEY: "BEvTykSCZIjCiPizGaYJQXjVpwZNtZ8ndW3lbHdYoR3dApmfiSbbCoGUcOR-86WwDkKvU-8MzhBsmClrixr0Odo",
            VAPID_PRIVATE_KEY: "rPxlDbml3xkD-7eh6l3wq_3M-hnKrXi7icbXGlmaCGE",
            VAPID_SUBJECT: "mailto:push@plantcommunity.test",
            // The emulated push service, beside the real ones (src/config.ts's default list).
            PUSH_SERVICE_HOSTS:
              "push.emulator.test,fcm.googleapis.com,android.googleapis.com,updates.push.services.mozilla.com,*.push.apple.com,*.notify.windows.com",
            EMAIL_WEBHOOK_SECRET: "whsec_dGVzdC13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5YWI=",
            JWT_SECRET: "test-secret-0123456789abcdef0123456789abcdef",
            GOOGLE_CLIENT_ID: "google-test-client",
            GOOGLE_CLIENT_SECRET: "google-test-secret",
            GOOGLE_AUTH_URL: "https://google.emulator.test/o/oauth2/v2/auth",
            GOOGLE_TOKEN_URL: "https://google.emulator.test/token",
            GOOGLE_JWKS_URL: "https://google.emulator.test/oauth2/v3/certs",
            GOOGLE_ISSUER: "https://google.emulator.test",
            FIREBASE_PROJECT_ID: "plant-community-test",
            FIREBASE_JWKS_URL: "https://firebase.emulator.test/jwks",
            GITHUB_CLIENT_ID: "github-test-client",
            GITHUB_CLIENT_SECRET: "github-test-secret",
            GITHUB_AUTHORIZE_URL: "https://github.emulator.test/login/oauth/authorize",
            GITHUB_TOKEN_URL: "https://github.emulator.test/login/oauth/access_token",
            GITHUB_API_URL: "https://api.github.emulator.test",
          },
        },
      }),
    ],
    test: {
      setupFiles: ["./test/setup.ts"],
      include: ["test/**/*.test.ts"],
      testTimeout: 20_000,
      // Work a file left running (a queue job, a waitUntil task) that logs or imports a module
      // while vitest closes that file's worker fails the RPC call it was making, and vitest
      // reports it as an unhandled error that fails a run whose tests all passed
      // (vitest-dev/vitest#11153). Only that teardown error is dropped: the file's tests had all
      // ended before its worker closed, so it cannot hide a test's failure. Every other unhandled
      // error still fails the run. test/setup.ts and the tests keep such work rare (LOG_LEVEL warn
      // reaches the queue consumers; outbound calls fail at once; tests wait for their own work;
      // each file waits for its queue work, helpers/queue-work.ts).
      onUnhandledError: (error: { name?: string; message?: string }) =>
        !(error.name === "EnvironmentTeardownError" && (error.message ?? "").includes("[vitest-worker]: Closing rpc while")),
    },
  };
});
