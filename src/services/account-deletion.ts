/**
 * Self-service account deletion. The owner proves it is them (the password, or a fresh sign-in
 * for an account without one, and the second factor when two-factor sign-in is on), and in one
 * atomic batch:
 *
 * - every session ends (tokens, sockets, socket tickets, push devices, the calendar feed);
 * - what is private to the account is deleted: identification and diagnosis requests with their
 *   results, collections and plants, saved care cards, reminders, notifications and their
 *   deliveries, preferences, events it organised (with their RSVPs; everyone going to one that has
 *   not ended hears it is cancelled) and its own RSVPs, forum subscriptions and reactions, blog
 *   comments awaiting moderation, Idempotency-Keys, linked sign-in providers, reset links;
 * - the account's row stays, anonymised — a generated username, an address at `.invalid`, no
 *   password, no profile, inactive, `deleted_at` set — so what others answered or built on keeps
 *   its place: its forum topics and posts, published blog comments and proposals on other
 *   people's requests are shown under the generated name (in others' notifications too), and its
 *   proposals and votes stop counting toward any consensus (as a deactivated account's);
 * - its old username is retired for good (`retired_usernames`, hashed): old posts still say
 *   "@<name>", so nobody may register it again, in any case; its email address is free at once;
 * - the counters its requests fed (species' confirmed counts, helpers' `identifications_helped`)
 *   and the consensus of others' requests it voted on are recounted, and the public caches that
 *   showed its name or its requests are purged.
 *
 * Then its photos are released from R2 (each only if nothing else refers to it), its live-progress
 * hub forgets its requests' messages (and records no more), and the old address is told. Staff
 * accounts (author, moderator, editor, admin) cannot delete themselves: an administrator changes
 * the role first, so the service cannot lose its last administrator or a published author's
 * byline by one click. A write of the account's that lands after the batch is refused by
 * migrations/0042 (`deletedAccountRefusal` answers it); a deletion whose session ended before its
 * batch ran writes nothing (401).
 */
import { and, eq, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Config } from "../config";
import { batchRows, database, rowIf, tableRows } from "../db/client";
import {
  blogComments,
  calendarEvents,
  calendarRsvps,
  careReminders,
  collections,
  forumReactions,
  forumSubscriptions,
  idempotencyKeys,
  notificationDeliveries,
  notificationPreferences,
  notifications,
  oauthAccounts,
  passwordResetTokens,
  twoFactorResets,
  refreshTokens,
  retiredUsernames,
  savedCareInstructions,
  twoFactor,
  userPhotoBytes,
  users,
} from "../db/schema";
import type { Bindings } from "../env";
import { AppError, isDeletedAccountWrite } from "../lib/errors";
import { toHex } from "../lib/hash";
import type { Logger } from "../lib/logger";
import { proveAccountOwner } from "./account-proof";
import { purgeBlogReadsStatement } from "./blog-cache";
import { replyNoticeOf } from "./blog-comments";
import { organiserLeavingNotice } from "./calendar";
import { accountRecountStatements, agreementKey, ownerRemovalStatements, proposalNoticesOf, tellRecount } from "./community";
import { raisedBy } from "./forum";
import { deliverEmail } from "./mailer";
import { announceNotifications } from "./notifications";
import { releasePhotoRefs } from "./photos";
import { userHub } from "./progress";
import { purgeStatement } from "./public-cache";
import { endEverySession, sessionEnded, sessionStillLive, sessionsEndedIf } from "./sessions";
import type { TokenClaims } from "./tokens";
import { proveSecondFactorIfOn, type SecondFactor } from "./two-factor";
import { findUserById, retiredUsernameKey, type UserRow } from "./users";

/**
 * The rows private to an account that go with it, by the column naming their owner (its requests
 * and plants are deleted apart, for the photos their deletes name). The refresh tokens were revoked
 * in the same batch, and an inactive account refuses them anyway.
 */
const OWN_ROWS: [SQLiteTable, SQLiteColumn][] = [
  [collections, collections.userId],
  [savedCareInstructions, savedCareInstructions.userId],
  [careReminders, careReminders.userId],
  [notificationDeliveries, notificationDeliveries.userId],
  [notifications, notifications.userId],
  [notificationPreferences, notificationPreferences.userId],
  [calendarRsvps, calendarRsvps.userId],
  [calendarEvents, calendarEvents.organizerId],
  [forumSubscriptions, forumSubscriptions.userId],
  [forumReactions, forumReactions.userId],
  [idempotencyKeys, idempotencyKeys.userId],
  [oauthAccounts, oauthAccounts.userId],
  [passwordResetTokens, passwordResetTokens.userId],
  [refreshTokens, refreshTokens.userId],
  [twoFactor, twoFactor.userId],
  [twoFactorResets, twoFactorResets.userId],
  [userPhotoBytes, userPhotoBytes.userId],
];

/** The domain of a deleted account's address: reserved (RFC 2606), so it can never receive mail or be registered. */
export const DELETED_EMAIL_DOMAIN = "deleted.invalid";
/** The start of a deleted account's generated username; registration refuses names that start so. */
export const DELETED_USERNAME_PREFIX = "deleted-";

/** "An editor", "An admin", "An author", "A moderator": the role with its article, to start a sentence. */
function aRole(role: string): string {
  return `${/^[aeiou]/i.test(role) ? "An" : "A"} ${role}`;
}

export async function deleteAccount(
  env: Bindings,
  config: Config,
  user: UserRow,
  proof: { currentPassword: string | undefined; secondFactor?: SecondFactor; sessionStartedAt?: number | undefined },
  /** The access token that asked: the deletion lands only while it is live (sessionStillLive). */
  session: Pick<TokenClaims, "jti" | "iat" | "sid">,
  logger?: Logger,
): Promise<void> {
  if (user.role !== "user") {
    throw new AppError(
      "INVALID_STATE",
      409,
      `${aRole(user.role)} account cannot delete itself: ask an administrator to change its role to user first.`,
    );
  }
  await proveAccountOwner(env, config, user, proof, "delete your account", logger);
  // What cannot be undone asks for what signing in asks for: a stolen session and the password
  // must not be enough to destroy an account that has two-factor sign-in on.
  await proveSecondFactorIfOn(env, config, user, proof.secondFactor ?? {}, "delete your account", logger);
  await eraseAccount(env, user, { by: "owner", session }, logger);
}

/**
 * An administrator deletes someone's account on their behalf (a support request: the owner lost
 * every way in, or asked in writing). The same erasure as the owner's own; staff accounts are
 * demoted first, and an account deleted already answers 409.
 */
export async function deleteAccountAsAdmin(env: Bindings, userId: string, logger?: Logger): Promise<void> {
  const user = await findUserById(env, userId);
  if (!user) throw new AppError("NOT_FOUND", 404, "No such user.");
  if (user.deletedAt) throw new AppError("INVALID_STATE", 409, "That account was deleted already.");
  if (user.role !== "user") {
    throw new AppError("INVALID_STATE", 409, `${aRole(user.role)} account cannot be deleted: change its role to user first.`);
  }
  await eraseAccount(env, user, { by: "administrator" }, logger);
}

async function eraseAccount(
  env: Bindings,
  user: UserRow,
  asker: { by: "owner"; session: Pick<TokenClaims, "jti" | "iat" | "sid"> } | { by: "administrator" },
  logger?: Logger,
): Promise<void> {
  const { by } = asker;
  const db = database(env);
  const uid = user.id;
  const newName = `${DELETED_USERNAME_PREFIX}${toHex(crypto.getRandomValues(new Uint8Array(6)))}`;
  // The deletion was decided on earlier reads: the owner's session checked (a provider sign-in by
  // the address's owner, taking over an account a stranger set up on it, may end it meanwhile and
  // must keep the account), or the account found not deleted yet (by the administrator). The
  // batch's first write gives the account its generated name only while that still holds; every
  // other write of the batch lands only if it did (`erasing`), as the batch's own session ending
  // would make the session's own check fail halfway.
  const stillHolds =
    asker.by === "owner"
      ? sessionStillLive(uid, asker.session)
      : sql`EXISTS (SELECT 1 FROM ${users} du WHERE du.id = ${uid} AND du.deleted_at IS NULL)`;
  const gate = db
    .update(users)
    .set({ username: newName })
    .where(and(eq(users.id, uid), stillHolds));
  const erasing = sql`EXISTS (SELECT 1 FROM ${users} eu WHERE eu.id = ${uid} AND eu.username = ${newName})`;
  const anonymise = db
    .update(users)
    .set({
      username: newName,
      email: `${newName}@${DELETED_EMAIL_DOMAIN}`,
      passwordHash: null,
      firstName: "",
      lastName: "",
      bio: "",
      location: "",
      website: "",
      gardeningExperience: "beginner",
      profileVisibility: "private",
      avatarKey: null,
      isActive: false,
      emailVerified: false,
      pendingEmail: null,
      lockoutNotifiedAt: null,
      // When the person last signed in is theirs too (administrators see it).
      lastLogin: null,
      plantsIdentified: 0,
      identificationsHelped: 0,
      tokensValidAfter: Date.now(),
      deletedAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
    })
    .where(and(eq(users.id, uid), erasing));
  // The old name is retired for good (case-insensitively, stored hashed): its posts and comments
  // still say "@<name>", and whoever took the name next would answer to them. The address is not:
  // the person may come back with it.
  const retire = db
    .insert(retiredUsernames)
    .select(rowIf(retiredUsernames, { usernameSha256: await retiredUsernameKey(user.username) }, erasing))
    .onConflictDoNothing();
  // Its photos, named by the deletes that free them (so a request that lands while this runs is
  // either deleted with its photos named, or not deleted at all).
  const photoDeletes = [
    sql`DELETE FROM identification_requests WHERE user_id = ${uid} AND ${erasing} RETURNING image_hashes AS refs`,
    sql`DELETE FROM disease_requests WHERE user_id = ${uid} AND ${erasing} RETURNING image_hashes AS refs`,
    sql`DELETE FROM user_plants WHERE user_id = ${uid} AND ${erasing} RETURNING json_array(image_key) AS refs`,
  ];
  const removal = ownerRemovalStatements(uid, erasing);
  const cancelled = organiserLeavingNotice(db, uid, erasing);
  const recount = accountRecountStatements(uid, erasing);
  const also = [
    // Its requests' consensus goes and the counters it fed are recounted without them (their
    // results and votes still there to name who and what), before anything is deleted.
    ...removal,
    anonymise,
    retire,
    ...photoDeletes,
    // Guests of its events hear they are cancelled, before the events (and their RSVPs) go below.
    cancelled,
    ...OWN_ROWS.map(([table, owner]) => db.delete(table).where(and(eq(owner, uid), erasing))),
    // A comment still awaiting moderation was seen by nobody and answered by nobody (replies name
    // approved comments only): it goes, as private as a draft. Published ones stay.
    db.delete(blogComments).where(and(eq(blogComments.userId, uid), eq(blogComments.status, "pending"), erasing)),
    renameInOthersNotices(uid, user.username, newName, erasing),
    // Public reads that showed its name, its reactions, its requests' species or its diagnoses.
    purgeStatement(db, "forum", erasing),
    purgeStatement(db, "species", erasing),
    purgeStatement(db, "diseases", erasing),
    purgeBlogReadsStatement(sql`${erasing} AND EXISTS (SELECT 1 FROM ${blogComments} WHERE ${blogComments.userId} = ${uid})`),
    // Last: the consensus of others' requests it proposed for or voted on, now that it counts no more.
    ...recount,
  ];
  const results = await endEverySession(env, uid, { first: [gate], onlyIf: erasing, also, logger });
  if (!sessionsEndedIf(results)) {
    throw by === "owner" ? sessionEnded() : new AppError("INVALID_STATE", 409, "That account was deleted already.");
  }
  const resultOf = (statement: (typeof also)[number]) => results[results.length - also.length + also.indexOf(statement)];
  const refs = photoDeletes.flatMap((d) => batchRows(resultOf(d)).flatMap((row) => JSON.parse(String(row.refs)) as (string | null)[]));
  // The account is gone from here on: what follows is told or tidied best effort, and a failure
  // is logged, never answered as if the deletion had not happened.
  const bestEffort = (what: string) => (err: unknown) => logger?.error(what, { user_id: uid, error: String(err) });
  await tellRecount(env, results.slice(-recount.length), logger).catch(bestEffort("announcing a recount after an account deletion failed"));
  await announceNotifications(env, tableRows(notifications, resultOf(cancelled)), logger).catch(
    bestEffort("announcing a deleted account's cancelled events failed"),
  );
  await releasePhotoRefs(env, [...refs, user.avatarKey]).catch(bestEffort("releasing a deleted account's photos failed"));
  // Its live-progress hub's stored messages of those requests (species named, diagnoses), and
  // any that a job still running sends.
  await userHub(env, uid).accountDeleted().catch(bestEffort("clearing a deleted account's progress hub failed"));
  await deliverEmail(env, {
    to: user.email,
    subject: "Your Plant Community account was deleted",
    text:
      `Hello ${user.username},\n\n` +
      (by === "owner"
        ? "Your Plant Community account and its private data (plants, identifications, reminders, notifications) were " +
          "deleted just now, as you asked."
        : "An administrator of Plant Community deleted your account and its private data (plants, identifications, " +
          "reminders, notifications) just now, on your behalf.") +
      ` Your forum posts and comments stay, under an anonymous name. Your username is retired: nobody can take it ` +
      `after you. This address is free to sign up again.\n` +
      (by === "owner"
        ? "If this was not you, someone knew your password or was signed in as you: change that password wherever else you use it.\n"
        : ""),
  }).catch(bestEffort("account deletion email failed"));
}

/**
 * Others' notifications whose titles begin with the account's username ("alice replied to …",
 * "alice suggests …") begin with its generated name instead, as its posts and proposals now show.
 * Each kind is found by its dedupe key from the rows the account wrote (a range or a match on the
 * key's unique index, never a scan of everyone's notifications): forum replies and mentions by its
 * posts, blog comment replies by its comments, proposals by its results, agreements by its votes.
 */
function renameInOthersNotices(uid: string, oldName: string, newName: string, when: SQL): SQL {
  return sql`UPDATE notifications SET title = ${newName} || substr(title, ${oldName.length + 1})
    WHERE user_id <> ${uid} AND substr(title, 1, ${oldName.length}) = ${oldName} AND ${when} AND id IN (
      SELECT notifications.id FROM forum_posts p JOIN notifications ON ${raisedBy(sql`p.id`)} WHERE p.author_id = ${uid}
      UNION ALL SELECT n.id FROM blog_comments c JOIN notifications n ON ${replyNoticeOf(sql`c.id`)} WHERE c.user_id = ${uid}
      UNION ALL SELECT n.id FROM identification_results r JOIN notifications n ON ${proposalNoticesOf(sql`r.id`)}
        WHERE r.proposed_by = ${uid}
      UNION ALL SELECT n.id FROM votes v JOIN notifications n ON n.dedupe_key = ${agreementKey(sql`v.result_id`, sql`${uid}`)}
        WHERE v.user_id = ${uid})`;
}

/**
 * The answer to a write that migrations/0042 refused because its account is deleted (null for any
 * other error). The caller's own deletion landed after this request was authenticated: 401, as
 * its token is now (so is a caller without one, such as a refresh). A caller acting on someone
 * else's account that its owner deleted meanwhile: 409.
 */
export async function deletedAccountRefusal(env: Bindings, err: unknown, callerId: string | undefined): Promise<AppError | null> {
  if (!isDeletedAccountWrite(err)) return null;
  const caller = callerId
    ? await database(env).select({ deletedAt: users.deletedAt }).from(users).where(eq(users.id, callerId)).get()
    : undefined;
  if (callerId === undefined || caller?.deletedAt) return new AppError("TOKEN_INVALID", 401, "Token is invalid or has been revoked.");
  return new AppError("INVALID_STATE", 409, "That account was deleted by its owner.");
}
