declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    /** wrangler.toml's queue producer bindings and each queue's dead-letter queue (vitest.config.ts). */
    TEST_QUEUES: { producers: { binding: string; queue: string }[]; deadLetterQueues: Record<string, string> };
  }
}
