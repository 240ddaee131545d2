import { defineConfig } from "vitest/config";

// End-to-end tests: plain Node (not workerd). Each file starts the whole stack (emulators +
// `wrangler dev`) and drives headless Chromium against it, so files run one at a time and the
// timeouts are generous (the first run may install Chromium with apt).
export default defineConfig({
  test: {
    include: ["test-e2e/**/*.e2e.test.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 15 * 60_000,
    teardownTimeout: 30_000,
  },
});
