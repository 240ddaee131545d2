/**
 * Typed, validated settings read from the Worker's vars and secrets (API.md §7). Parsed once
 * per isolate per env object: a typo in a number or URL fails loudly at the first request
 * instead of silently becoming NaN deep inside a provider client.
 */
import type { z } from "zod";
import { ConfigSchema } from "./config-schema";
import type { Bindings } from "./env";

export type Config = z.infer<typeof ConfigSchema> & { isLocal: boolean };

const cache = new WeakMap<object, Config>();

export function getConfig(env: Bindings): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`Invalid configuration: ${detail}`);
  }
  if (parsed.data.JWT_SECRET.length < 32) {
    throw new Error("Invalid configuration: JWT_SECRET must be at least 32 characters");
  }
  if (parsed.data.JWT_SECRET_PREVIOUS.some((secret) => secret.length < 32)) {
    throw new Error("Invalid configuration: each secret in JWT_SECRET_PREVIOUS (comma-separated) must be at least 32 characters");
  }
  const isLocal = parsed.data.ENVIRONMENT === "local" || parsed.data.ENVIRONMENT === "test";
  // Links in mail (RFC 8058's one-click unsubscribe MUST be https), cookies and OAuth callbacks
  // are built on it: plain http only where nothing leaves the machine.
  if (!isLocal && !parsed.data.PUBLIC_API_URL.startsWith("https:")) {
    throw new Error("Invalid configuration: PUBLIC_API_URL must be an https origin outside local and test runs");
  }
  const fromDomain = /@([^>\s]+)>?\s*$/.exec(parsed.data.EMAIL_FROM)?.[1] ?? "localhost";
  const config: Config = {
    ...parsed.data,
    EMAIL_UNSUBSCRIBE_ADDRESS: parsed.data.EMAIL_UNSUBSCRIBE_ADDRESS ?? `unsubscribe@${fromDomain}`,
    // The current secret listed again (a rotation half undone) verifies as the current one anyway.
    JWT_SECRET_PREVIOUS: [...new Set(parsed.data.JWT_SECRET_PREVIOUS)].filter((secret) => secret !== parsed.data.JWT_SECRET),
    isLocal,
  };
  cache.set(env, config);
  return config;
}

/**
 * The environment of one request that swaps a binding (its D1 session, middleware/d1-session.ts)
 * and keeps every variable: it shares `base`'s parsed configuration instead of parsing it again.
 */
export function deriveEnv<E extends Bindings>(base: E, overrides: Partial<E>): E {
  const derived = { ...base, ...overrides };
  cache.set(derived, getConfig(base));
  return derived;
}
