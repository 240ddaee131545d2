/**
 * Accounts: creation (with the default "My Plants" collection), lookup for sign-in, the public
 * and private user shapes of API.md §1, and trust levels.
 */
import { parsePhotoRef, photoRef } from "./photos";
import { fetchPage, type Page, type PageRequest } from "../db/pagination";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import { uuidv7 } from "../lib/ids";

export type Role = "user" | "moderator" | "editor" | "admin";
export type TrustLevel = "new" | "basic" | "trusted" | "veteran";
export const STAFF_ROLES: readonly Role[] = ["moderator", "editor", "admin"];
export const DEFAULT_COLLECTION_NAME = "My Plants";

export interface UserRow {
  id: string;
  username: string;
  email: string;
  password_hash: string | null;
  first_name: string;
  last_name: string;
  bio: string;
  location: string;
  website: string;
  gardening_experience: string;
  profile_visibility: string;
  avatar_key: string | null;
  role: Role;
  trust_level: TrustLevel;
  is_active: number;
  email_verified: number;
  plants_identified: number;
  identifications_helped: number;
  post_count: number;
  date_joined: string;
  last_login: string | null;
  tokens_valid_after: number;
  lockout_notified_at: number | null;
  pending_email: string | null;
}

/** Trust thresholds (API.md §1): posts and account age, highest level first. */
const TRUST_RULES: { level: TrustLevel; posts: number; days: number }[] = [
  { level: "veteran", posts: 100, days: 90 },
  { level: "trusted", posts: 25, days: 30 },
  { level: "basic", posts: 5, days: 7 },
];
export const TRUST_ORDER: readonly TrustLevel[] = ["new", "basic", "trusted", "veteran"];

/** The level earned by activity, never below the stored one (no automatic downgrades). */
export function computeTrustLevel(user: Pick<UserRow, "post_count" | "date_joined" | "trust_level">, now = Date.now()): TrustLevel {
  const days = (now - Date.parse(user.date_joined)) / 86_400_000;
  const earned = TRUST_RULES.find((r) => user.post_count >= r.posts && days >= r.days)?.level ?? "new";
  return TRUST_ORDER.indexOf(earned) > TRUST_ORDER.indexOf(user.trust_level) ? earned : user.trust_level;
}

/** Avatars are served under their own path (`/api/v1/media/avatars/<ref>`); the photo is in the photo store like any other. */
export function avatarUrl(user: Pick<UserRow, "avatar_key">): string | null {
  const photo = user.avatar_key ? parsePhotoRef(user.avatar_key) : null;
  return photo ? `/api/v1/media/avatars/${photoRef(photo)}` : null;
}

export function publicUser(user: UserRow) {
  const displayName = `${user.first_name} ${user.last_name}`.trim() || user.username;
  return {
    id: user.id,
    username: user.username,
    display_name: displayName,
    first_name: user.first_name,
    last_name: user.last_name,
    bio: user.bio,
    location: user.location,
    avatar_url: avatarUrl(user),
    gardening_experience: user.gardening_experience,
    trust_level: computeTrustLevel(user),
    date_joined: user.date_joined,
    plants_identified: user.plants_identified,
    identifications_helped: user.identifications_helped,
  };
}

export function userProfile(user: UserRow) {
  return {
    ...publicUser(user),
    email: user.email,
    website: user.website,
    profile_visibility: user.profile_visibility,
    role: user.role,
    is_staff: STAFF_ROLES.includes(user.role),
    email_verified: Boolean(user.email_verified),
    /** An email change waiting for the new address to confirm (the account still uses `email`). */
    pending_email: user.pending_email ?? null,
    last_login: user.last_login,
  };
}

export async function findUserById(env: Bindings, id: string): Promise<UserRow | null> {
  return env.DB.prepare("SELECT * FROM users WHERE id = ?").bind(id).first<UserRow>();
}

/**
 * Sign-in identifier: an email or a username, matched case-insensitively. Usernames may contain
 * "@", so an identifier is looked up as both; an account's email wins over another's username.
 * A pending (unconfirmed) email change is never matched.
 */
export async function findUserByLogin(env: Bindings, identifier: string): Promise<UserRow | null> {
  return env.DB.prepare(
    "SELECT * FROM users WHERE lower(email) = lower(?1) OR lower(username) = lower(?1) ORDER BY lower(email) = lower(?1) DESC LIMIT 1",
  )
    .bind(identifier)
    .first<UserRow>();
}

export async function findUserByEmail(env: Bindings, email: string): Promise<UserRow | null> {
  return env.DB.prepare("SELECT * FROM users WHERE lower(email) = lower(?)").bind(email).first<UserRow>();
}

export interface NewUser {
  username: string;
  email: string;
  passwordHash: string | null;
  firstName?: string;
  lastName?: string;
  emailVerified?: boolean;
}

/** Field errors for a username/email already taken (case-insensitive). */
export async function uniquenessErrors(env: Bindings, username: string | null, email: string | null, exceptUserId?: string) {
  const errors: Record<string, string[]> = {};
  const [byName, byEmail] = await Promise.all([
    username ? env.DB.prepare("SELECT id FROM users WHERE lower(username) = lower(?)").bind(username).first<{ id: string }>() : null,
    email ? env.DB.prepare("SELECT id FROM users WHERE lower(email) = lower(?)").bind(email).first<{ id: string }>() : null,
  ]);
  if (byName && byName.id !== exceptUserId) errors.username = ["A user with that username already exists."];
  if (byEmail && byEmail.id !== exceptUserId) errors.email = ["A user with that email already exists."];
  return errors;
}

/** Creates the user and their default collection atomically. */
export async function createUser(env: Bindings, input: NewUser): Promise<UserRow> {
  const errors = await uniquenessErrors(env, input.username, input.email);
  if (Object.keys(errors).length > 0) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", errors);
  const id = uuidv7();
  try {
    await env.DB.batch([
      env.DB.prepare(
        `INSERT INTO users (id, username, email, password_hash, first_name, last_name, email_verified)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).bind(id, input.username, input.email, input.passwordHash, input.firstName ?? "", input.lastName ?? "", input.emailVerified ? 1 : 0),
      env.DB.prepare("INSERT INTO collections (id, user_id, name, is_default) VALUES (?, ?, ?, 1)").bind(
        uuidv7(),
        id,
        DEFAULT_COLLECTION_NAME,
      ),
    ]);
  } catch (err) {
    // Lost a race with a concurrent registration of the same name or email.
    if (err instanceof Error && /UNIQUE/i.test(err.message)) {
      throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", await uniquenessErrors(env, input.username, input.email));
    }
    throw err;
  }
  const user = await findUserById(env, id);
  if (!user) throw new Error("user vanished after insert");
  return user;
}

/** The staff listing: newest accounts first, optionally those whose username or email contains `search`. */
export function listUsers(env: Bindings, search: string | undefined, page: PageRequest): Promise<Page<UserRow>> {
  // A literal substring: instr, not LIKE (D1 refuses LIKE patterns over 50 bytes).
  const where = search ? "WHERE instr(lower(username), ?) > 0 OR instr(lower(email), ?) > 0" : "";
  const pattern = search ? search.toLowerCase() : undefined;
  return fetchPage<UserRow>(
    env,
    { select: "*", from: `FROM users ${where}`, order: "date_joined DESC, id DESC", binds: pattern ? [pattern, pattern] : [] },
    page,
  );
}

/** Gives the user `role`; 404 NOT_FOUND when there is no such user. */
export async function setUserRole(env: Bindings, id: string, role: Role): Promise<UserRow> {
  const result = await env.DB.prepare("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
    .bind(role, new Date().toISOString(), id)
    .run();
  if ((result.meta.changes ?? 0) === 0) throw new AppError("NOT_FOUND", 404, "User not found.");
  return (await findUserById(env, id))!;
}
