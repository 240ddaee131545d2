/**
 * D1 read replication with the Sessions API (issue 13 item 2, API.md §5d): the rules for where a
 * request's database session starts, and the environment whose `DB` is that session. The HTTP
 * side (which header or cookie carries a bookmark, what the answer says) is
 * middleware/d1-session.ts.
 *
 * - writes, and every request that carries credentials: the primary (`first-primary`), whatever
 *   bookmark the client sends. Such a request's first read checks a credential (a token's
 *   revocation, a password's hash, a socket ticket), and that check must see every revocation:
 *   a bookmark is the client's to choose, and an old one could let a replica that has not yet
 *   heard of a password change or a sign-out answer it. Later reads of the session may still come
 *   from a replica at least as new (D1 keeps a session sequentially consistent), so the caller
 *   reads its own writes without a bookmark;
 * - an anonymous read (GET/HEAD without credentials) with a valid bookmark: the session starts
 *   there, so a client that wrote while signed in sees that write in the public reads it makes
 *   next (a purged cache generation, its new forum topic);
 * - other anonymous reads: any replica (`first-unconstrained`) — public data a few moments old
 *   is fine.
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
  if (!READS.has(method) || hasCredentials) return "first-primary";
  return isBookmark(bookmark) ? bookmark : "first-unconstrained";
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
