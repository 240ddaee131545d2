/**
 * D1 read replication with the Sessions API (issue 13 item 2, API.md §5d): the rules for where a
 * request's database session starts, and the environment whose `DB` is that session. The HTTP
 * side (which header or cookie carries a bookmark, what the answer says) is
 * middleware/d1-session.ts.
 *
 * - a valid client bookmark: the session starts there, so the client reads its own writes from
 *   any replica;
 * - an anonymous read (GET/HEAD without credentials): any replica (`first-unconstrained`) —
 *   public data a few moments old is fine;
 * - everything else — writes, and signed-in reads, which must see the caller's own state even
 *   when the client keeps no bookmark — the primary (`first-primary`).
 */
import { deriveEnv } from "../config";
import { openSession } from "../db/client";
import type { Bindings } from "../env";

/** A D1 bookmark: four hex groups. Anything else is ignored, never passed to D1. */
const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;
const READS = new Set(["GET", "HEAD"]);

export function isBookmark(value: string | undefined): value is string {
  return value !== undefined && BOOKMARK.test(value);
}

/** The session's starting point for a request (exported for the tests' table). */
export function sessionConstraint(method: string, bookmark: string | undefined, hasCredentials: boolean): string {
  if (isBookmark(bookmark)) return bookmark;
  return READS.has(method) && !hasCredentials ? "first-unconstrained" : "first-primary";
}

export interface RequestSession<E extends Bindings> {
  /** `env` with `DB` replaced by the session (every other binding and variable kept). */
  env: E;
  /** Where the session ended up: the bookmark to hand back to the client, when there is one. */
  bookmark(): string | null;
}

/** Opens the request's D1 session and the environment that uses it. */
export function openRequestSession<E extends Bindings>(
  env: E,
  request: { method: string; bookmark: string | undefined; hasCredentials: boolean },
): RequestSession<E> {
  const { db, session } = openSession(env.DB, sessionConstraint(request.method, request.bookmark, request.hasCredentials));
  const sent = isBookmark(request.bookmark) ? request.bookmark : null;
  return {
    env: deriveEnv(env, { DB: db } as Partial<E>),
    bookmark: () => session?.getBookmark() ?? sent,
  };
}
