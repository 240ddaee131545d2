/**
 * /api/v1/auth — accounts and sessions (API.md §1). Web clients get HttpOnly cookies plus a
 * CSRF token; mobile clients use /token/ and bearer headers. Business rules live in
 * services/ (users, tokens, passwords, rate-limits); this file is HTTP only.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { randomToken, sha256Hex } from "../lib/hash";
import { AVATAR_RULES, validateImageUpload } from "../lib/images";
import { clearSessionCookies, ensureCsrfCookie, setSessionCookies } from "../lib/session-cookies";
import { assertCsrf, REFRESH_COOKIE, requireAuth } from "../middleware/auth";
import { sendEmail } from "../providers/email";
import { burnPasswordCheck, hashPassword, needsRehash, passwordPolicyErrors, verifyPassword } from "../services/passwords";
import {
  assertNotLocked,
  clearLoginFailures,
  clientIp,
  enforceRateLimit,
  recordLoginFailure,
} from "../services/rate-limits";
import {
  issueTokenPair,
  revokeAccessToken,
  revokeAllForUserStatements,
  revokeFamily,
  rotateRefreshToken,
  verifyToken,
} from "../services/tokens";
import { createUser, findUserByEmail, findUserById, findUserByLogin, publicUser, uniquenessErrors, userProfile, type UserRow } from "../services/users";
import { ErrorSchema, jsonBody, MessageSchema } from "./schemas";

// ---- Schemas --------------------------------------------------------------------------------

const PublicUserSchema = z
  .object({
    id: z.uuid(),
    username: z.string(),
    display_name: z.string(),
    first_name: z.string(),
    last_name: z.string(),
    bio: z.string(),
    location: z.string(),
    avatar_url: z.string().nullable(),
    gardening_experience: z.string(),
    trust_level: z.enum(["new", "basic", "trusted", "veteran"]),
    date_joined: z.string(),
    plants_identified: z.number().int(),
    identifications_helped: z.number().int(),
  })
  .openapi("User");

const UserProfileSchema = PublicUserSchema.extend({
  email: z.string(),
  website: z.string(),
  profile_visibility: z.string(),
  role: z.enum(["user", "moderator", "editor", "admin"]),
  is_staff: z.boolean(),
  email_verified: z.boolean(),
  last_login: z.string().nullable(),
}).openapi("UserProfile");

const UserEnvelope = z.object({ message: z.string(), user: UserProfileSchema });

const username = z
  .string()
  .trim()
  .min(3, "Username must be at least 3 characters.")
  .max(150, "Username must be at most 150 characters.")
  .regex(/^[\w.@+-]+$/, "Enter a valid username. It may contain only letters, digits and @/./+/-/_ characters.");
const email = z.email("Enter a valid email address.").max(254).transform((v) => v.trim());

const RegisterBody = z
  .object({
    username,
    email,
    password: z.string().min(1, "This field is required.").max(1024),
    password_confirm: z.string().optional(),
    first_name: z.string().trim().max(150).optional(),
    last_name: z.string().trim().max(150).optional(),
  })
  .openapi("RegisterRequest");

const LoginBody = z
  .object({
    username: z.string().trim().min(1).max(254).optional(),
    email: z.string().trim().min(1).max(254).optional(),
    password: z.string().min(1, "This field is required.").max(1024),
  })
  .refine((b) => b.username || b.email, { message: "Provide a username or an email.", path: ["username"] })
  .openapi("LoginRequest");

const TokenPairSchema = z
  .object({
    access: z.string(),
    refresh: z.string(),
    token_type: z.literal("Bearer"),
    expires_in: z.number().int(),
  })
  .openapi("TokenPair");

const RefreshBody = z.object({ refresh: z.string().min(1).optional() }).openapi("RefreshRequest");

const ProfilePatch = z
  .object({
    first_name: z.string().trim().max(150),
    last_name: z.string().trim().max(150),
    bio: z.string().max(500, "Ensure this field has no more than 500 characters."),
    location: z.string().max(100, "Ensure this field has no more than 100 characters."),
    website: z.union([z.url({ protocol: /^https?$/, message: "Enter a valid URL." }), z.literal("")]),
    gardening_experience: z.enum(["beginner", "intermediate", "advanced", "expert"]),
    profile_visibility: z.enum(["public", "followers", "private"]),
    email,
  })
  .partial()
  .strict()
  .openapi("ProfileUpdate");

const AvatarForm = z
  .object({ avatar: z.any().optional().openapi({ type: "string", format: "binary", description: "JPEG, PNG or WebP, ≤ 2 MiB" }) })
  .openapi("AvatarUpload");

const PasswordChangeBody = z
  .object({ old_password: z.string().min(1).max(1024), new_password: z.string().min(1).max(1024) })
  .openapi("PasswordChange");
const PasswordResetBody = z.object({ email: z.string().trim().min(1).max(254) }).openapi("PasswordResetRequest");
const PasswordResetConfirmBody = z
  .object({
    token: z.string().min(10).max(200),
    new_password: z.string().min(1).max(1024),
    new_password_confirm: z.string().optional(),
  })
  .openapi("PasswordResetConfirm");

const errors = {
  400: { description: "Invalid input", content: { "application/json": { schema: ErrorSchema } } },
  401: { description: "Not authenticated", content: { "application/json": { schema: ErrorSchema } } },
  403: { description: "CSRF failure", content: { "application/json": { schema: ErrorSchema } } },
  429: { description: "Rate limited or account locked", content: { "application/json": { schema: ErrorSchema } } },
};

// ---- Helpers --------------------------------------------------------------------------------

function policyCheck(password: string, confirm: string | undefined, user: { username?: string; email?: string }, field: string) {
  const fieldErrors: Record<string, string[]> = {};
  const problems = passwordPolicyErrors(password, user);
  if (problems.length > 0) fieldErrors[field] = problems;
  if (confirm !== undefined && confirm !== password) fieldErrors[`${field}_confirm`] = ["Passwords do not match."];
  if (Object.keys(fieldErrors).length > 0) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", fieldErrors);
}

const INVALID_CREDENTIALS = () => new AppError("INVALID_CREDENTIALS", 401, "Invalid username or password.");

/**
 * The shared sign-in check for /login and /token: per-IP limit, account lockout (also for
 * unknown names, so lockout does not reveal which names exist), constant-work password check.
 */
async function authenticateCredentials(c: Context<AppEnv>, identifier: string, password: string): Promise<UserRow> {
  const config = getConfig(c.env);
  await enforceRateLimit(c.env, `login:ip:${clientIp(c.req.raw)}`, config.LOGIN_RATE_LIMIT);
  const user = await findUserByLogin(c.env, identifier);
  const accountKey = user ? `user:${user.id}` : `name:${identifier.toLowerCase()}`;
  await assertNotLocked(c.env, accountKey);

  const ok = user?.password_hash ? await verifyPassword(password, user.password_hash) : await burnPasswordCheck(password);
  if (!ok || !user || !user.is_active) {
    const failure = await recordLoginFailure(c.env, config, accountKey);
    if (failure.justLocked && user) c.executionCtx.waitUntil(notifyLockout(c, user));
    throw INVALID_CREDENTIALS();
  }
  await clearLoginFailures(c.env, accountKey);
  const lastLogin = new Date().toISOString();
  const statements = [c.env.DB.prepare("UPDATE users SET last_login = ? WHERE id = ?").bind(lastLogin, user.id)];
  if (needsRehash(user.password_hash!)) {
    statements.push(c.env.DB.prepare("UPDATE users SET password_hash = ? WHERE id = ?").bind(await hashPassword(password), user.id));
  }
  await c.env.DB.batch(statements);
  return { ...user, last_login: lastLogin };
}

async function notifyLockout(c: Context<AppEnv>, user: UserRow) {
  const config = getConfig(c.env);
  const logger = c.get("logger");
  try {
    // One email per lockout period, however many attempts keep arriving.
    const now = Math.floor(Date.now() / 1000);
    const claimed = await c.env.DB.prepare(
      "UPDATE users SET lockout_notified_at = ? WHERE id = ? AND (lockout_notified_at IS NULL OR lockout_notified_at < ?)",
    )
      .bind(now, user.id, now - config.LOCKOUT_DURATION_S)
      .run();
    if ((claimed.meta.changes ?? 0) === 0) return;
    await sendEmail(
      { apiUrl: config.EMAIL_API_URL, apiKey: config.EMAIL_API_KEY, from: config.EMAIL_FROM },
      {
        to: user.email,
        subject: "Your Plant Community account was locked",
        text:
          `Hello ${user.username},\n\nWe saw ${config.LOCKOUT_THRESHOLD} failed sign-in attempts on your account and locked it ` +
          `for ${Math.round(config.LOCKOUT_DURATION_S / 60)} minutes. If this was not you, consider resetting your password:\n` +
          `${config.FRONTEND_URL}/forgot-password\n`,
      },
    );
  } catch (err) {
    logger.warn("lockout email failed", { user_id: user.id, error: String(err) });
  }
}

function tokenPairBody(pair: { access: string; refresh: string; accessExpiresIn: number }) {
  return { access: pair.access, refresh: pair.refresh, token_type: "Bearer" as const, expires_in: pair.accessExpiresIn };
}

async function currentUserRow(c: Context<AppEnv>): Promise<UserRow> {
  const user = await findUserById(c.env, c.get("user")!.id);
  if (!user) throw new AppError("AUTHENTICATION_REQUIRED", 401, "User no longer exists.");
  return user;
}

// ---- Routes ---------------------------------------------------------------------------------

const tags = ["Auth"];

export function authRoutes() {
  const app = new OpenAPIHono<AppEnv>({ strict: false });

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/auth/csrf",
      tags,
      summary: "Issue the csrftoken cookie",
      responses: { 200: jsonBody(z.object({ csrfToken: z.string() }), "CSRF token (also set as the csrftoken cookie)") },
    }),
    (c) => c.json({ csrfToken: ensureCsrfCookie(c) }, 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/auth/register",
      tags,
      summary: "Create an account (web: sets session cookies)",
      request: { body: { content: { "application/json": { schema: RegisterBody } }, required: true } },
      responses: { 201: jsonBody(UserEnvelope, "Account created"), ...errors },
    }),
    async (c) => {
      const config = getConfig(c.env);
      await enforceRateLimit(c.env, `register:ip:${clientIp(c.req.raw)}`, config.REGISTER_RATE_LIMIT);
      const body = c.req.valid("json");
      policyCheck(body.password, body.password_confirm, { username: body.username, email: body.email }, "password");
      const user = await createUser(c.env, {
        username: body.username,
        email: body.email,
        passwordHash: await hashPassword(body.password),
        firstName: body.first_name,
        lastName: body.last_name,
      });
      setSessionCookies(c, await issueTokenPair(c.env, config, user.id));
      return c.json({ message: "Registration successful.", user: userProfile(user) }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/auth/login",
      tags,
      summary: "Sign in (web: sets session cookies)",
      request: { body: { content: { "application/json": { schema: LoginBody } }, required: true } },
      responses: { 200: jsonBody(UserEnvelope, "Signed in"), ...errors },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const user = await authenticateCredentials(c, (body.username ?? body.email)!, body.password);
      setSessionCookies(c, await issueTokenPair(c.env, getConfig(c.env), user.id));
      return c.json({ message: "Login successful.", user: userProfile(user) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/auth/token",
      tags,
      summary: "Sign in for mobile/API clients (tokens in the body, no cookies)",
      request: { body: { content: { "application/json": { schema: LoginBody } }, required: true } },
      responses: { 200: jsonBody(TokenPairSchema, "Token pair"), ...errors },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const user = await authenticateCredentials(c, (body.username ?? body.email)!, body.password);
      return c.json(tokenPairBody(await issueTokenPair(c.env, getConfig(c.env), user.id)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/auth/token/refresh",
      tags,
      summary: "Rotate a refresh token (cookie or body)",
      description:
        "The presented refresh token is revoked and a new pair issued. Presenting a revoked token revokes its whole family. " +
        "Cookie-based refresh needs the X-CSRFToken header and answers with cookies; body-based refresh answers with tokens.",
      request: { body: { content: { "application/json": { schema: RefreshBody } }, required: false } },
      responses: {
        200: jsonBody(z.union([TokenPairSchema, z.object({ message: z.string(), expires_in: z.number() })]), "New token pair"),
        ...errors,
      },
    }),
    async (c) => {
      const config = getConfig(c.env);
      await enforceRateLimit(c.env, `refresh:ip:${clientIp(c.req.raw)}`, config.REFRESH_RATE_LIMIT);
      const fromBody = c.req.valid("json")?.refresh;
      const fromCookie = fromBody ? undefined : getCookie(c, REFRESH_COOKIE);
      const token = fromBody ?? fromCookie;
      if (!token) {
        throw new AppError("VALIDATION_ERROR", 400, "No refresh token provided.", { refresh: ["This field is required."] });
      }
      if (fromCookie) assertCsrf(c);
      const pair = await rotateRefreshToken(c.env, config, token);
      if (fromCookie) {
        setSessionCookies(c, pair);
        return c.json({ message: "Token refreshed.", expires_in: pair.accessExpiresIn }, 200);
      }
      return c.json(tokenPairBody(pair), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/auth/logout",
      tags,
      summary: "Sign out: revoke the session's refresh token family and the current access token",
      middleware: [requireAuth] as const,
      request: { body: { content: { "application/json": { schema: RefreshBody } }, required: false } },
      responses: { 200: jsonBody(MessageSchema, "Signed out"), ...errors },
    }),
    async (c) => {
      const config = getConfig(c.env);
      const claims = c.get("accessClaims")!;
      const refresh = c.req.valid("json")?.refresh ?? getCookie(c, REFRESH_COOKIE);
      if (refresh) {
        const refreshClaims = await verifyToken(config, refresh, "refresh").catch(() => null);
        if (refreshClaims?.fam && refreshClaims.sub === claims.sub) await revokeFamily(c.env, refreshClaims.fam);
      }
      await revokeAccessToken(c.env, claims.jti, claims.exp);
      clearSessionCookies(c);
      return c.json({ message: "Logged out." }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/auth/user",
      tags,
      summary: "The signed-in user's profile",
      middleware: [requireAuth] as const,
      responses: { 200: jsonBody(UserProfileSchema, "Profile"), ...errors },
    }),
    async (c) => c.json(userProfile(await currentUserRow(c)), 200),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/api/v1/auth/user",
      tags,
      summary: "Update the profile (JSON), or upload an avatar (multipart field `avatar`)",
      middleware: [requireAuth] as const,
      request: {
        body: {
          content: {
            "application/json": { schema: ProfilePatch },
            "multipart/form-data": { schema: AvatarForm },
          },
          required: true,
        },
      },
      responses: { 200: jsonBody(UserProfileSchema, "Updated profile"), ...errors },
    }),
    async (c) => {
      const user = await currentUserRow(c);
      const contentType = c.req.header("Content-Type") ?? "";
      if (contentType.toLowerCase().startsWith("multipart/form-data")) {
        await updateAvatar(c, user, (c.req.valid("form") as z.infer<typeof AvatarForm>).avatar);
      } else {
        const patch = c.req.valid("json") as z.infer<typeof ProfilePatch>;
        if (patch.email && patch.email.toLowerCase() !== user.email.toLowerCase()) {
          const taken = await uniquenessErrors(c.env, null, patch.email, user.id);
          if (taken.email) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", taken);
        }
        const columns = Object.entries(patch).filter(([, v]) => v !== undefined);
        if (columns.length > 0) {
          const emailChanged = patch.email !== undefined && patch.email.toLowerCase() !== user.email.toLowerCase();
          // Column names come from the strict zod schema's keys, never from the client.
          const sets = columns.map(([k]) => `${k} = ?`);
          if (emailChanged) sets.push("email_verified = 0");
          await c.env.DB.prepare(`UPDATE users SET ${sets.join(", ")}, updated_at = ? WHERE id = ?`)
            .bind(...columns.map(([, v]) => v as string), new Date().toISOString(), user.id)
            .run();
        }
      }
      return c.json(userProfile(await currentUserRow(c)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/auth/password/change",
      tags,
      summary: "Change the password; signs out every other session",
      middleware: [requireAuth] as const,
      request: { body: { content: { "application/json": { schema: PasswordChangeBody } }, required: true } },
      responses: { 200: jsonBody(z.object({ message: z.string() }).passthrough(), "Changed"), ...errors },
    }),
    async (c) => {
      const config = getConfig(c.env);
      const body = c.req.valid("json");
      const user = await currentUserRow(c);
      if (!user.password_hash || !(await verifyPassword(body.old_password, user.password_hash))) {
        throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { old_password: ["Your old password was entered incorrectly."] });
      }
      policyCheck(body.new_password, undefined, user, "new_password");
      await c.env.DB.batch([
        c.env.DB.prepare("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?").bind(
          await hashPassword(body.new_password),
          new Date().toISOString(),
          user.id,
        ),
        ...revokeAllForUserStatements(c.env, user.id),
      ]);
      // This client stays signed in with a fresh session; every other one is out.
      const pair = await issueTokenPair(c.env, config, user.id);
      if (c.get("authMethod") === "cookie") {
        setSessionCookies(c, pair);
        return c.json({ message: "Password changed." }, 200);
      }
      return c.json({ message: "Password changed.", ...tokenPairBody(pair) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/auth/password/reset",
      tags,
      summary: "Email a single-use reset link (always 200: no account enumeration)",
      request: { body: { content: { "application/json": { schema: PasswordResetBody } }, required: true } },
      responses: { 200: jsonBody(MessageSchema, "Request accepted"), ...errors },
    }),
    async (c) => {
      const config = getConfig(c.env);
      await enforceRateLimit(c.env, `reset:ip:${clientIp(c.req.raw)}`, config.REGISTER_RATE_LIMIT);
      const { email: address } = c.req.valid("json");
      // The lookup and mail happen after the response, so timing does not reveal accounts.
      c.executionCtx.waitUntil(sendPasswordReset(c, address));
      return c.json({ message: "If an account exists for that email, a password reset link has been sent." }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/auth/password/reset/confirm",
      tags,
      summary: "Set a new password with an emailed reset token (single use)",
      request: { body: { content: { "application/json": { schema: PasswordResetConfirmBody } }, required: true } },
      responses: { 200: jsonBody(MessageSchema, "Password set"), ...errors },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const tokenHash = await sha256Hex(body.token);
      const now = Math.floor(Date.now() / 1000);
      const invalid = () => new AppError("INVALID_TOKEN", 400, "The password reset link is invalid or has expired.");
      const pending = await c.env.DB.prepare(
        "SELECT user_id FROM password_reset_tokens WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
      )
        .bind(tokenHash, now)
        .first<{ user_id: string }>();
      if (!pending) throw invalid();
      const user = await findUserById(c.env, pending.user_id);
      if (!user) throw invalid();
      policyCheck(body.new_password, body.new_password_confirm, user, "new_password");
      const newHash = await hashPassword(body.new_password);
      // Consuming the token and setting the password are one atomic batch; the conditional
      // update makes a second use (even a concurrent one) change nothing.
      const [consumed] = await c.env.DB.batch([
        c.env.DB.prepare("UPDATE password_reset_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL").bind(now, tokenHash),
        c.env.DB.prepare(
          "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND EXISTS (SELECT 1 FROM password_reset_tokens WHERE token_hash = ? AND used_at = ?)",
        ).bind(newHash, new Date().toISOString(), user.id, tokenHash, now),
        ...revokeAllForUserStatements(c.env, user.id),
      ]);
      if (!consumed || (consumed.meta.changes ?? 0) === 0) throw invalid();
      return c.json({ message: "Your password has been reset. You can now sign in." }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/auth/ws-ticket",
      tags,
      summary: "A single-use, 60-second ticket for opening a WebSocket from a browser",
      middleware: [requireAuth] as const,
      responses: { 200: jsonBody(z.object({ ticket: z.string(), expires_in: z.literal(60) }), "Ticket"), ...errors },
    }),
    async (c) => {
      const ticket = randomToken(32);
      await c.env.DB.prepare("INSERT INTO ws_tickets (ticket_hash, user_id, expires_at) VALUES (?, ?, ?)")
        .bind(await sha256Hex(ticket), c.get("user")!.id, Math.floor(Date.now() / 1000) + 60)
        .run();
      return c.json({ ticket, expires_in: 60 as const }, 200);
    },
  );

  return app;
}

async function sendPasswordReset(c: Context<AppEnv>, address: string): Promise<void> {
  const config = getConfig(c.env);
  const logger = c.get("logger");
  try {
    const user = await findUserByEmail(c.env, address);
    if (!user || !user.is_active) return;
    const token = randomToken(32);
    await c.env.DB.prepare("INSERT INTO password_reset_tokens (token_hash, user_id, expires_at) VALUES (?, ?, ?)")
      .bind(await sha256Hex(token), user.id, Math.floor(Date.now() / 1000) + config.PASSWORD_RESET_TTL_S)
      .run();
    const link = `${config.FRONTEND_URL}/reset-password?token=${encodeURIComponent(token)}`;
    await sendEmail(
      { apiUrl: config.EMAIL_API_URL, apiKey: config.EMAIL_API_KEY, from: config.EMAIL_FROM },
      {
        to: user.email,
        subject: "Reset your Plant Community password",
        text:
          `Hello ${user.username},\n\nUse this link to choose a new password (valid for ` +
          `${Math.round(config.PASSWORD_RESET_TTL_S / 60)} minutes, once):\n${link}\n\nReset token: ${token}\n\n` +
          `If you did not ask for this, ignore this email.\n`,
      },
    );
  } catch (err) {
    logger.error("password reset email failed", { error: String(err) });
  }
}

async function updateAvatar(c: Context<AppEnv>, user: UserRow, file: unknown): Promise<void> {
  if (!(file instanceof File)) {
    throw new AppError("VALIDATION_ERROR", 400, "No avatar file provided.", { avatar: ["No file was submitted."] });
  }
  const result = await validateImageUpload(
    { bytes: new Uint8Array(await file.arrayBuffer()), declaredType: file.type, filename: file.name },
    AVATAR_RULES,
  );
  if (!result.ok) {
    throw new AppError(result.code === "FILE_TOO_LARGE" ? "FILE_TOO_LARGE" : "INVALID_IMAGE", result.code === "FILE_TOO_LARGE" ? 413 : 400, result.message, {
      avatar: [result.message],
    });
  }
  const key = `avatars/${result.image.sha256}.${result.image.extension}`;
  await c.env.IMAGES.put(key, result.image.bytes, { httpMetadata: { contentType: result.image.mime } });
  await c.env.DB.prepare("UPDATE users SET avatar_key = ?, updated_at = ? WHERE id = ?")
    .bind(key, new Date().toISOString(), user.id)
    .run();
}

export { PublicUserSchema, UserProfileSchema, publicUser };
