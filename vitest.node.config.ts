import { defineConfig } from "vitest/config";

// Tests that need Node rather than workerd: OpenAPI schema validation (its validator compiles
// JSON Schema with `new Function`, which workerd forbids) and the emulators' HTTP server.
export default defineConfig({
  test: {
    include: ["test-node/**/*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
  },
});
