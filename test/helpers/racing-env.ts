/**
 * An `env` whose D1 binding runs a competing request just before the first batch a service sends:
 * the write that lands between a service's check and its own write, on purpose. `fired` says
 * whether it ran.
 */
import { env } from "cloudflare:workers";

export function envRacingFirstBatch(before: () => Promise<unknown>): { env: typeof env; fired: () => boolean } {
  let fired = false;
  const racing = envAroundBatches(async (n) => {
    if (n === 1) {
      fired = true;
      await before();
    }
  });
  return { env: racing.env, fired: () => fired };
}

/**
 * An `env` whose D1 binding calls `around(n, sql)` before its n-th batch (from 1), `sql` the
 * batch's statements' text; what it throws, the batch throws (D1 failing mid-way through a
 * service's work). `batches` counts them.
 */
export function envAroundBatches(around: (n: number, sql: string[]) => Promise<void>): { env: typeof env; batches: () => number } {
  let n = 0;
  const DB = new Proxy(env.DB, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "batch") return typeof value === "function" ? value.bind(target) : value;
      return async (statements: D1PreparedStatement[]) => {
        await around(++n, statements.map(statementText));
        return target.batch(statements);
      };
    },
  });
  return { env: { ...env, DB } as typeof env, batches: () => n };
}

/**
 * An `env` whose D1 binding runs `before` just before the first statement whose SQL matches
 * `sql` executes (drizzle's single queries do not go through batch): a request landing between a
 * service's read and its write. `fired` says whether it ran.
 */
export function envRacingStatement(sql: RegExp, before: () => Promise<unknown>): { env: typeof env; fired: () => boolean } {
  let fired = false;
  const DB = withMatchingStatements(sql, async (run) => {
    if (!fired) {
      fired = true;
      await before();
    }
    return run();
  });
  return { env: { ...env, DB } as typeof env, fired: () => fired };
}

/**
 * `env.DB` whose statements matching `sql` execute (first, all, raw, run) through `around`, which
 * calls `run` to execute them; other statements and batches go straight through.
 */
function withMatchingStatements(sql: RegExp, around: (run: () => Promise<unknown>) => Promise<unknown>): D1Database {
  const wrap = (statement: D1PreparedStatement): D1PreparedStatement =>
    new Proxy(statement, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        if (prop === "bind") return (...args: unknown[]) => wrap(value.apply(target, args));
        if (prop === "first" || prop === "all" || prop === "raw" || prop === "run")
          return (...args: unknown[]) => around(() => value.apply(target, args));
        return value.bind(target);
      },
    });
  return new Proxy(env.DB, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "prepare") return typeof value === "function" ? value.bind(target) : value;
      return (query: string) => (sql.test(query) ? wrap(target.prepare(query)) : target.prepare(query));
    },
  });
}

const statementText = (st: D1PreparedStatement) => String((st as unknown as { statement?: string }).statement ?? "");

/**
 * An `env` whose D1 binding runs `before` once, just before the first batch that inserts into
 * `table` (a job's completion writing its results): what lands between a job's claim and its
 * completion. `fired` says whether it ran.
 */
export function envBeforeBatchInto(table: string, before: () => Promise<void>): { env: typeof env; fired: () => boolean } {
  let fired = false;
  const into = new RegExp(`into "?${table}"?`, "i");
  const DB = new Proxy(env.DB, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "batch") return typeof value === "function" ? value.bind(target) : value;
      return async (statements: D1PreparedStatement[]) => {
        if (!fired && statements.some((st) => into.test(statementText(st)))) {
          fired = true;
          await before();
        }
        return target.batch(statements);
      };
    },
  });
  return { env: { ...env, DB } as typeof env, fired: () => fired };
}

/**
 * An `env` whose D1 binding runs `after` once, as soon as the first statement or batch whose SQL
 * matches `sql` has run: a request (a delete, say) landing between a service's write and its
 * read-back of what it wrote, or between two reads. `fired` says whether it ran.
 */
export function envAfterStatement(sql: RegExp, after: () => Promise<unknown>): { env: typeof env; fired: () => boolean } {
  let fired = false;
  const thenAfter = async <T>(result: T): Promise<T> => {
    if (!fired) {
      fired = true;
      await after();
    }
    return result;
  };
  const statements = withMatchingStatements(sql, async (run) => thenAfter(await run()));
  const DB = new Proxy(statements, {
    get(target, prop) {
      if (prop !== "batch") return Reflect.get(target, prop, target);
      return async (batch: D1PreparedStatement[]) => {
        // Unwrapped: D1 takes its own statements, not the proxies above.
        const results = await env.DB.batch(batch.map((st) => (st as unknown as { valueOf(): D1PreparedStatement }).valueOf()));
        return batch.some((st) => sql.test(statementText(st))) ? thenAfter(results) : results;
      };
    },
  });
  return { env: { ...env, DB } as typeof env, fired: () => fired };
}
