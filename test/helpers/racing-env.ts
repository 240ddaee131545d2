/**
 * An `env` whose D1 binding runs a competing request just before the first batch a service sends:
 * the write that lands between a service's check and its own write, on purpose. `fired` says
 * whether it ran.
 */
import { env } from "cloudflare:workers";

export function envRacingFirstBatch(before: () => Promise<unknown>): { env: typeof env; fired: () => boolean } {
  let fired = false;
  const DB = new Proxy(env.DB, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "batch") return typeof value === "function" ? value.bind(target) : value;
      return async (statements: D1PreparedStatement[]) => {
        if (!fired) {
          fired = true;
          await before();
        }
        return target.batch(statements);
      };
    },
  });
  return { env: { ...env, DB } as typeof env, fired: () => fired };
}
