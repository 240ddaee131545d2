/**
 * Password hashing and policy (API.md §1).
 *
 * PBKDF2-SHA-256 at 100 000 iterations — the most WebCrypto in workerd allows — with a 16-byte
 * per-user salt. The algorithm and its parameters are stored with each hash
 * (`pbkdf2_sha256$<iterations>$<salt>$<hash>`, Django's layout) so they can be raised later:
 * `needsRehash` tells the login path when to upgrade a stored hash.
 */
import { COMMON_BASE_WORDS, COMMON_PASSWORDS } from "../lib/common-passwords";
import { base64Decode, base64Encode } from "../lib/hash";

export const PBKDF2_ITERATIONS = 100_000;
const KEY_BYTES = 32;

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, KEY_BYTES * 8);
  return new Uint8Array(bits);
}

export async function hashPassword(password: string, iterations = PBKDF2_ITERATIONS): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await derive(password, salt, iterations);
  return `pbkdf2_sha256$${iterations}$${base64Encode(salt)}$${base64Encode(hash)}`;
}

/** Parses and checks a stored hash; false for any malformed value rather than throwing. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 4 || parts[0] !== "pbkdf2_sha256") return false;
  const iterations = Number(parts[1]);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > PBKDF2_ITERATIONS) return false;
  let salt: Uint8Array;
  let expected: Uint8Array;
  try {
    salt = base64Decode(parts[2]!);
    expected = base64Decode(parts[3]!);
  } catch {
    return false;
  }
  const actual = await derive(password, salt, iterations);
  return actual.byteLength === expected.byteLength && crypto.subtle.timingSafeEqual(actual, expected);
}

export function needsRehash(stored: string): boolean {
  const [algorithm, iterations] = stored.split("$");
  return algorithm !== "pbkdf2_sha256" || Number(iterations) < PBKDF2_ITERATIONS;
}

/** A fixed hash to verify against when the user does not exist, so timing does not tell. */
let dummyHash: Promise<string> | undefined;
export function burnPasswordCheck(password: string): Promise<boolean> {
  dummyHash ??= hashPassword("dummy-password-for-timing-equalisation");
  return dummyHash.then((h) => verifyPassword(password, h)).then(() => false);
}

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 128;

/** Returns the policy violations for a new password (empty when it is acceptable). */
export function passwordPolicyErrors(password: string, context: { username?: string; email?: string }): string[] {
  const errors: string[] = [];
  if (password.length < PASSWORD_MIN_LENGTH) {
    errors.push(`This password is too short. It must contain at least ${PASSWORD_MIN_LENGTH} characters.`);
  }
  if (password.length > PASSWORD_MAX_LENGTH) {
    errors.push(`This password is too long. It must contain at most ${PASSWORD_MAX_LENGTH} characters.`);
  }
  if (/^\d+$/.test(password)) errors.push("This password is entirely numeric.");
  const lower = password.toLowerCase();
  const similar = [context.username, context.email, context.email?.split("@")[0]]
    .filter((v): v is string => Boolean(v && v.length >= 3))
    .some((v) => lower === v.toLowerCase() || (lower.includes(v.toLowerCase()) && v.length >= lower.length / 2));
  if (similar) errors.push("The password is too similar to the username or email.");
  const base = lower.replace(/[\d\W_]+$/u, "").replace(/^[\d\W_]+/u, "");
  if (COMMON_PASSWORDS.has(lower) || COMMON_BASE_WORDS.has(base) || /^(.)\1+$/.test(lower)) {
    errors.push("This password is too common.");
  }
  return errors;
}
