/**
 * Routes the Worker's outbound fetches to the provider emulators for the duration of each
 * test: `*.emulator.test` hosts (see vitest.config.ts) go to a fresh set of emulators; any
 * other host fails the request loudly, because nothing here may reach the internet.
 */
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, vi } from "vitest";
import { createEmulators, hostMap, type Emulators } from "../../emulators/index";

export interface OutboundOptions {
  /** Extra handlers by hostname, consulted before the emulators (e.g. a fake that records timing). */
  overrides?: Record<string, (request: Request) => Promise<Response>>;
}

export function useEmulators(
  options: OutboundOptions = {},
): Emulators & { overrides: Record<string, (request: Request) => Promise<Response>> } {
  const emulators = createEmulators();
  const route = hostMap(emulators);
  const overrides: Record<string, (request: Request) => Promise<Response>> = { ...options.overrides };
  let spy: ReturnType<typeof vi.spyOn> | undefined;

  beforeEach(async () => {
    emulators.reset();
    // Circuit breakers are shared Durable Objects: one test's outage must not open them for the next.
    await Promise.all(["plant_id", "plantnet"].map((p) => env.PROVIDER_CIRCUIT.get(env.PROVIDER_CIRCUIT.idFromName(p)).resetCircuit()));
    for (const key of Object.keys(overrides)) if (!options.overrides?.[key]) delete overrides[key];
    spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = input instanceof Request && init === undefined ? input : new Request(input, init);
      const override = overrides[new URL(request.url).hostname];
      if (override) return override(request);
      const routed = route(request);
      if (routed) return routed;
      throw new TypeError(`test tried to reach the internet: ${request.method} ${request.url}`);
    });
  });

  afterEach(() => {
    spy?.mockRestore();
  });

  return Object.assign(emulators, { overrides });
}
