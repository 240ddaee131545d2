/**
 * Accounts: creation (with the default "My Plants" collection), lookup for sign-in, the public
 * and private user shapes of API.md §1, and trust levels.
 */
import { and, desc, eq, inArray, ne, or, type SQL, type SQLWrapper, sql } from "drizzle-orm";
import { database, runBatch, tableRows } from "../db/client";
import { type Page, type PageRequest, tablePage } from "../db/pagination";
import { collectionName } from "../db/collection-names";
import { collections, oauthAccounts, retiredUsernames, users } from "../db/schema";
import type { Bindings } from "../env";
import { AppError, isUniqueViolation } from "../lib/errors";
import { sha256Hex } from "../lib/hash";
import { uuidv7 } from "../lib/ids";
import { parsePhotoRef, photoRef } from "./photos";
import { DAY_MS } from "../lib/durations";

export type Role = "user" | "author" | "moderator" | "editor" | "admin";
export type TrustLevel = "new" | "basic" | "trusted" | "veteran";
/** SQL: the account `userId` names exists and is active (a deactivated account's rows are withdrawn). */
export function accountActive(userId: SQLWrapper): SQL {
  return sql`EXISTS (SELECT 1 FROM users au WHERE au.id = ${userId} AND au.is_active = 1)`;
}

export const STAFF_ROLES: readonly Role[] = ["moderator", "editor", "admin"];
export const DEFAULT_COLLECTION_NAME = "My Plants";

export type UserRow = typeof users.$inferSelect;

/** Trust thresholds (API.md §1): posts and account age, highest level first. */
const TRUST_RULES: { level: TrustLevel; posts: number; days: number }[] = [
  { level: "veteran", posts: 100, days: 90 },
  { level: "trusted", posts: 25, days: 30 },
  { level: "basic", posts: 5, days: 7 },
];
/** The `basic` rule: the one whose age part can make an account's community votes start counting. */
export const BASIC_TRUST = TRUST_RULES[2]!;
export const TRUST_ORDER: readonly TrustLevel[] = ["new", "basic", "trusted", "veteran"];

/**
 * SQL over a `users` row aliased `u`: true when computeTrustLevel would answer something above
 * `new` (a stored level above it, or the basic level earned by posts and account age).
 */
export const ABOVE_NEW_SQL = `(u.trust_level <> 'new' OR (u.post_count >= ${BASIC_TRUST.posts} AND julianday('now') - julianday(u.date_joined) >= ${BASIC_TRUST.days}))`;

/** The level earned by activity, never below the stored one (no automatic downgrades). */
export function computeTrustLevel(user: Pick<UserRow, "postCount" | "dateJoined" | "trustLevel">, now = Date.now()): TrustLevel {
  const days = (now - Date.parse(user.dateJoined)) / DAY_MS;
  const earned = TRUST_RULES.find((r) => user.postCount >= r.posts && days >= r.days)?.level ?? "new";
  return TRUST_ORDER.indexOf(earned) > TRUST_ORDER.indexOf(user.trustLevel) ? earned : user.trustLevel;
}

/** Avatars are served under their own path (`/api/v1/media/avatars/<ref>`); the photo is in the photo store like any other. */
export function avatarUrl(user: Pick<UserRow, "avatarKey">): string | null {
  const photo = user.avatarKey ? parsePhotoRef(user.avatarKey) : null;
  return photo ? `/api/v1/media/avatars/${photoRef(photo)}` : null;
}

/**
 * How a user's name and face appear beside what they wrote, to everyone: their real name and
 * avatar while their profile is public, only their username otherwise (a profile that is not
 * public also shows no collections). The same for every reader, so cached public reads hold it.
 */
export function byline(user: BylineOf & { avatarKey: string | null }): { display_name: string; avatar_url: string | null } {
  return { display_name: displayName(user), avatar_url: user.profileVisibility === "public" ? avatarUrl(user) : null };
}

type BylineOf = { username: string; firstName: string | null; lastName: string | null; profileVisibility: string | null };

/** The name `byline` shows (where no avatar is shown, as in the blog's v2 reads). */
export function displayName(user: BylineOf): string {
  const name = user.profileVisibility === "public" ? `${user.firstName ?? ""} ${user.lastName ?? ""}`.trim() : "";
  return name || user.username;
}

export function publicUser(user: UserRow) {
  const displayName = `${user.firstName} ${user.lastName}`.trim() || user.username;
  return {
    id: user.id,
    username: user.username,
    display_name: displayName,
    first_name: user.firstName,
    last_name: user.lastName,
    bio: user.bio,
    location: user.location,
    avatar_url: avatarUrl(user),
    gardening_experience: user.gardeningExperience,
    trust_level: computeTrustLevel(user),
    date_joined: user.dateJoined,
    plants_identified: user.plantsIdentified,
    identifications_helped: user.identificationsHelped,
  };
}

export function userProfile(user: UserRow) {
  return {
    ...publicUser(user),
    email: user.email,
    website: user.website,
    profile_visibility: user.profileVisibility,
    role: user.role,
    is_staff: STAFF_ROLES.includes(user.role),
    email_verified: user.emailVerified,
    /** An email change waiting for the new address to confirm (the account still uses `email`). */
    pending_email: user.pendingEmail ?? null,
    last_login: user.lastLogin,
  };
}

/** What moderators and editors see of an account: its profile without the sign-in details (email, last sign-in). */
export function staffUserView(user: UserRow) {
  const { email: _email, email_verified: _verified, pending_email: _pending, last_login: _login, ...rest } = userProfile(user);
  return rest;
}

export async function findUserById(env: Bindings, id: string): Promise<UserRow | null> {
  return (await database(env).select().from(users).where(eq(users.id, id)).get()) ?? null;
}

/**
 * Sign-in identifier: an email or a username, matched case-insensitively. Usernames may contain
 * "@", so an identifier is looked up as both; an account's email wins over another's username.
 * A pending (unconfirmed) email change is never matched.
 */
export async function findUserByLogin(env: Bindings, identifier: string): Promise<UserRow | null> {
  const byEmail = sql`lower(${users.email}) = lower(${identifier})`;
  const row = await database(env)
    .select()
    .from(users)
    .where(or(byEmail, sql`lower(${users.username}) = lower(${identifier})`))
    .orderBy(desc(byEmail))
    .limit(1)
    .get();
  return row ?? null;
}

export async function findUserByEmail(env: Bindings, email: string): Promise<UserRow | null> {
  const row = await database(env).select().from(users).where(sql`lower(${users.email}) = lower(${email})`).get();
  return row ?? null;
}

export interface NewUser {
  username: string;
  email: string;
  passwordHash: string | null;
  firstName?: string;
  lastName?: string;
  emailVerified?: boolean;
}

/**
 * A deleted account's username is retired for good (services/account-deletion.ts): its old posts
 * still say "@alice", and whoever took the name next would answer to every one of them. The
 * `retired_usernames` key of a name: the SHA-256 (hex) of it lower-cased, so the table keeps no
 * old name readable and a retired name is refused in any case, as names are matched at sign-in.
 */
export function retiredUsernameKey(username: string): Promise<string> {
  return sha256Hex(username.toLowerCase());
}

/** Which of `usernames` are retired, lower-cased. */
export async function retiredAmong(env: Bindings, usernames: string[]): Promise<Set<string>> {
  if (usernames.length === 0) return new Set();
  const keys = await Promise.all(usernames.map(retiredUsernameKey));
  const rows = await database(env)
    .select({ key: retiredUsernames.usernameSha256 })
    .from(retiredUsernames)
    .where(inArray(retiredUsernames.usernameSha256, keys));
  const found = new Set(rows.map((row) => row.key));
  return new Set(usernames.filter((_, i) => found.has(keys[i]!)).map((name) => name.toLowerCase()));
}

/**
 * The account's linked sign-ins that do not vouch for its current address: linked unverified, or
 * with another address (the account's address changed since). On an account whose address was
 * confirmed from outside (`password_proven` unset), whoever held the account before may have made
 * them; see services/oauth.ts claimOf and accounts.ts confirmPasswordReset.
 */
export function linksNotVouchingForAddress(userId: string): SQL {
  return and(
    eq(oauthAccounts.userId, userId),
    sql`NOT (${oauthAccounts.emailVerified} = 1 AND lower(${oauthAccounts.email}) = (SELECT lower(u.email) FROM users u WHERE u.id = ${userId}))`,
  )!;
}

/** The refusal of a retired username: plain, as it says nothing of whose it was. */
export const USERNAME_NOT_AVAILABLE = "This username is not available.";

/**
 * Field errors for a username/email already taken (case-insensitive), or a username retired. Both
 * are sign-in names (`findUserByLogin`), so each is checked against other accounts' usernames and
 * emails alike: an email equal to someone's email-shaped username would otherwise take that
 * sign-in name from them (the email wins the lookup), and an address nobody proved could do it.
 * An email is never retired: a deleted account's address is free again at once.
 */
export async function uniquenessErrors(env: Bindings, username: string | null, email: string | null, exceptUserId?: string) {
  const errors: Record<string, string[]> = {};
  const db = database(env);
  const other = (value: string) =>
    db
      .select({ id: users.id })
      .from(users)
      .where(
        and(
          or(sql`lower(${users.username}) = lower(${value})`, sql`lower(${users.email}) = lower(${value})`),
          exceptUserId ? ne(users.id, exceptUserId) : undefined,
        ),
      )
      .get();
  const [byName, byEmail, retired] = await Promise.all([
    username ? other(username) : null,
    email ? other(email) : null,
    username ? retiredAmong(env, [username]) : new Set<string>(),
  ]);
  if (byName) errors.username = ["A user with that username already exists."];
  else if (retired.size > 0) errors.username = [USERNAME_NOT_AVAILABLE];
  if (byEmail) errors.email = ["A user with that email already exists."];
  return errors;
}

/**
 * Creates the user and their default collection atomically. The user is inserted only while its
 * name is not retired, checked inside the batch: an account named so that is deleted between the
 * check above and this insert retires the name in its own batch, and one of the two lands first.
 */
export async function createUser(env: Bindings, input: NewUser): Promise<UserRow> {
  const errors = await uniquenessErrors(env, input.username, input.email);
  if (Object.keys(errors).length > 0) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", errors);
  const id = uuidv7();
  const db = database(env);
  const retiredKey = await retiredUsernameKey(input.username);
  const stamp = sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;
  const defaultName = collectionName(DEFAULT_COLLECTION_NAME);
  let inserted: unknown;
  try {
    [inserted] = await runBatch(db, [
      sql`INSERT INTO ${users} (id, username, email, password_hash, first_name, last_name, email_verified)
        SELECT ${id}, ${input.username}, ${input.email}, ${input.passwordHash}, ${input.firstName ?? ""}, ${input.lastName ?? ""},
          ${input.emailVerified ? 1 : 0}
        WHERE NOT EXISTS (SELECT 1 FROM ${retiredUsernames} WHERE ${retiredUsernames.usernameSha256} = ${retiredKey})
        RETURNING *`,
      // Only with its user: nothing when the name was refused.
      db.insert(collections).select(
        db
          .select({
            id: sql<string>`${uuidv7()}`.as("id"),
            userId: users.id,
            name: sql<string>`${defaultName.name}`.as("name"),
            nameKey: sql<string>`${defaultName.nameKey}`.as("name_key"),
            description: sql<string>`''`.as("description"),
            isPublic: sql<boolean>`0`.as("is_public"),
            isDefault: sql<boolean>`1`.as("is_default"),
            createdAt: stamp.as("created_at"),
            updatedAt: stamp.as("updated_at"),
          })
          .from(users)
          .where(eq(users.id, id)),
      ),
    ]);
  } catch (err) {
    // Lost a race with a concurrent registration of the same name or email.
    if (isUniqueViolation(err)) {
      throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", await uniquenessErrors(env, input.username, input.email));
    }
    throw err;
  }
  const [user] = tableRows(users, inserted);
  if (!user) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { username: [USERNAME_NOT_AVAILABLE] });
  return user;
}

/**
 * Users, newest first, whose username — or, for `byEmail` (admins), email — contains `search`.
 * Moderators and editors find people by name only: matching emails would let them test whether
 * an address has an account here.
 */
export function listUsers(
  env: Bindings,
  search: string | undefined,
  page: PageRequest,
  opts: { byEmail: boolean },
): Promise<Page<UserRow>> {
  // A literal substring: instr, not LIKE (D1 refuses LIKE patterns over 50 bytes).
  const needle = search?.toLowerCase();
  const byName = sql`instr(lower(${users.username}), ${needle}) > 0`;
  const where = needle ? (opts.byEmail ? sql`${byName} OR instr(lower(${users.email}), ${needle}) > 0` : byName) : undefined;
  return tablePage(database(env), users, where, [desc(users.dateJoined), desc(users.id)], page);
}

/**
 * Gives the user `role`; 404 NOT_FOUND when there is no such user. The service never loses its
 * last administrator: taking the role from an active admin needs another active admin, checked
 * in the update itself, so two admins demoting each other at once leave one (409 INVALID_STATE).
 */
export async function setUserRole(env: Bindings, id: string, role: Role): Promise<UserRow> {
  const row = await database(env)
    .update(users)
    .set({ role, updatedAt: new Date().toISOString() })
    .where(and(eq(users.id, id), role === "admin" ? undefined : keepsAnAdmin(id)))
    .returning()
    .get();
  if (row) return row;
  if (!(await findUserById(env, id))) throw new AppError("NOT_FOUND", 404, "User not found.");
  throw lastAdmin();
}

/**
 * SQL (self-contained): the service still has an active administrator without account `id` —
 * it is not one, or another is. A write that takes the role or the account away holds only then.
 */
export function keepsAnAdmin(id: string): SQL {
  return sql`EXISTS (SELECT 1 FROM ${users} target WHERE target.id = ${id} AND (target.role <> 'admin' OR target.is_active = 0
    OR EXISTS (SELECT 1 FROM ${users} other WHERE other.role = 'admin' AND other.is_active = 1 AND other.id <> ${id})))`;
}

/** The refusal of a change that would leave the service without an active administrator. */
export const lastAdmin = () =>
  new AppError("INVALID_STATE", 409, "This is the last active administrator: make another account an admin first.");

/** The user's trust level now (earned by activity, never below the stored one); null for no such user. */
export async function trustLevelOf(env: Bindings, userId: string, now = Date.now()): Promise<TrustLevel | null> {
  const row = await database(env)
    .select({ postCount: users.postCount, dateJoined: users.dateJoined, trustLevel: users.trustLevel })
    .from(users)
    .where(eq(users.id, userId))
    .get();
  return row ? computeTrustLevel(row, now) : null;
}
