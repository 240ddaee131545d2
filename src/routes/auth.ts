/**
 * /api/v1/auth — accounts and sessions (API.md §1). Web clients get HttpOnly cookies plus a
 * CSRF token; mobile clients use /token/ and bearer headers. Business rules live in
 * services/ (users, tokens, passwords, rate-limits); this file is HTTP only.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { createRouter, routeSet } from "./router";
import { AppError } from "../lib/errors";
import { uuidv7Timestamp } from "../lib/ids";
import { clearSessionCookies, ensureCsrfCookie, REFRESH_COOKIE, setSessionCookies } from "../lib/session-cookies";
import { sessionDeviceOf } from "../lib/session-device";
import { accessClaimsOf, assertCsrf, userIdOf } from "../middleware/auth";
import {
  passwordFieldErrors,
  changePassword,
  confirmEmailChange,
  resendVerificationEmail,
  sendVerificationEmail,
  confirmPasswordReset,
  issueWsTicket,
  requestEmailChange,
  requestPasswordReset,
  signInWithPassword,
  updateAvatar,
  updateProfile,
  WS_TICKET_TTL_S,
} from "../services/accounts";
import { storageUsage } from "../services/photos";
import { hashPassword, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from "../services/passwords";
import { clientIp, enforceRateLimit, rateLimitRefusal } from "../services/rate-limits";
import { endEverySession, endOwnSession, endSession, listSessions } from "../services/sessions";
import { issueTokenPair, revokeAccessToken, rotateRefreshToken, type TokenPair, verifyToken } from "../services/tokens";
import { DELIVERY_STATUSES, EXPORT_FORMAT, EXPORT_VERSION, exportAccountStream, NOTIFICATION_CHANNELS } from "../services/account-export";
import { signInWithFirebase } from "../services/firebase";
import { DELETED_USERNAME_PREFIX, deleteAccount } from "../services/account-deletion";
import {
  cancelTwoFactorReset,
  cancelTwoFactorResetByLink,
  describeTwoFactorResetLink,
  type OpenTwoFactorReset,
  openTwoFactorResets,
  requestTwoFactorReset,
  startTwoFactorReset,
} from "../services/two-factor-reset";
import { createUser, findUserById, publicUser, userProfile, type UserRow } from "../services/users";
import { jsonBody, MessageSchema, errorResponse, requestJson, ErrorSchema } from "./schemas";
import {
  beginTwoFactorSetup,
  completeTwoFactorSignIn,
  disableTwoFactor,
  enableTwoFactor,
  replaceRecoveryCodes,
  type SignInVia,
  TWO_FACTOR_TOKEN_TTL_S,
  twoFactorStatus,
} from "../services/two-factor";

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
  role: z.enum(["user", "author", "moderator", "editor", "admin"]),
  is_staff: z.boolean(),
  email_verified: z.boolean(),
  pending_email: z
    .string()
    .nullable()
    .openapi({
      description:
        "An email change waiting for the new address to confirm the emailed link; null when none is — none asked for, confirmed, or " +
        "cancelled (asking for the current address, every session ending, or the end of the session that asked for it), or its " +
        "link expired unconfirmed (cleared within five minutes)",
    }),
  last_login: z.string().nullable(),
}).openapi("UserProfile");

const StorageSchema = z
  .object({
    used_bytes: z.number().int().openapi({ description: "Bytes of the photos you keep stored, each counted once" }),
    limit_bytes: z.number().int().openapi({ description: "Your allowance (`USER_STORAGE_BYTES`)" }),
  })
  .openapi("Storage");

const UserEnvelope = z.object({ message: z.string(), user: UserProfileSchema });

/** Parts of an export that are lists of what other routes answer: described, not restated. */
const exportedList = (description: string) => z.array(z.record(z.string(), z.unknown())).openapi({ description });

const AccountExportSchema = z
  .object({
    format: z.literal(EXPORT_FORMAT),
    version: z.literal(EXPORT_VERSION),
    exported_at: z.string(),
    account: UserProfileSchema,
    sign_in_methods: z
      .array(
        z.object({
          provider: z.enum(["google", "github", "firebase"]),
          email: z.string(),
          email_verified: z.boolean(),
          linked_at: z.string(),
        }),
      )
      .openapi({ description: "Linked provider accounts: the provider, its account's email, when linked. No provider tokens." }),
    two_factor: z.object({ enabled: z.boolean(), enabled_at: z.string().nullable() }).openapi({
      description: "Whether two-factor sign-in is on, and since when. Never its secret or recovery codes.",
    }),
    notification_preferences: z.record(z.string(), z.unknown()).openapi({ description: "As `GET notifications/preferences/` answers." }),
    email_suppressions: z
      .array(z.object({ address: z.string(), reason: z.enum(["bounce", "complaint"]), created_at: z.string() }))
      .openapi({
        description:
          "Your addresses (the account's email, or one you are changing to) that the email provider reported as hard-bouncing " +
          "(`bounce`) or as marking our mail spam (`complaint`), and since when: no email goes to them until lifted (a bounce by " +
          "asking for a confirmation link again, `POST auth/email/verify/`; a complaint only by support).",
      }),
    collections: exportedList(
      "Your collections as `collections/` shows them, each with `plants` (as `plants/` shows them, private notes included).",
    ),
    identification_requests: exportedList(
      "Your requests as `requests/` shows them, each with `results` and `my_votes` (your own votes on them).",
    ),
    disease_requests: exportedList("Your diagnoses as `disease-requests/` shows them, each with `results`."),
    saved_care_instructions: exportedList("Your saved care cards."),
    reminders: exportedList("Your care reminders."),
    calendar: z.object({
      events: exportedList("Events you organise, in the order you made them."),
      rsvps: exportedList("Your RSVPs: event id and status."),
      feed: z.object({ created_at: z.string(), last_fetched_at: z.string().nullable() }).nullable().openapi({
        description:
          "Your calendar subscription (`reminders/calendar-feed/`): when its URL was issued and last fetched; null when you have none. Never the URL.",
      }),
    }),
    forum: z.object({
      topics: exportedList("Topics you started."),
      posts: exportedList("Posts you wrote (a deleted one as the placeholder the forum shows)."),
      reactions: exportedList("Your reactions: post id and type."),
      subscriptions: exportedList("Topics you follow."),
    }),
    blog: z.object({
      posts: exportedList(
        "Blog posts you wrote, in the order you started them (drafts included while you hold a writing role; the published ones only once it is taken away), as the editor's `GET blog/posts/{id}/` answers.",
      ),
      revisions: exportedList("Revisions you saved, on any post: `post_id` and the revision as `blog/posts/{id}/revisions/` lists it."),
      images: exportedList("Blog images you uploaded: `id`, `url`, `created_at`."),
    }),
    blog_comments: exportedList("Comments you wrote, with their moderation status."),
    reports: z
      .object({
        forum_posts: exportedList(
          "Forum posts you reported: the report's `id`, `post_id`, `reason`, `status`, `created_at`, `resolved_at`.",
        ),
        blog_comments: exportedList("Blog comments you reported: the report's `id`, `comment_id`, `reason`, `status`, `created_at`."),
        proposals: exportedList(
          "Community proposals you reported: `result_id`, `reason`, `status` (open, resolved), `created_at`, `resolved_at`.",
        ),
      })
      .openapi({ description: "Reports you filed. Never who handled them, nor anyone else's reports." }),
    community: z.object({
      proposals: exportedList(
        "Species you proposed on other people's shared requests, each as `requests/{id}/results/` shows a result. On a request no longer shared (or whose owner's account is deactivated), only what you wrote: `id`, `request_id`, `species_id`, `scientific_name`, `plant_name`, `common_names`, `family`, `genus`, `identification_source`, `proposed_by`, `withdrawn_at`, `comment`, `created_at`.",
      ),
      votes: exportedList("Your votes on other people's results."),
    }),
    push_devices: exportedList(
      "Devices subscribed to Web Push: `push_service` (the endpoint's host), when, the last delivery, since when every push to it has failed (`failing_since`) and the user agent. No endpoints or keys.",
    ),
    sessions: z
      .array(z.object({ client: z.string(), country: z.string().nullable(), created_at: z.string(), last_used_at: z.string() }))
      .openapi({ description: "Where you are signed in, as `auth/sessions/` lists it, without the sessions' ids." }),
    notifications: z
      .array(
        z.object({
          id: z.string(),
          type: z.string(),
          title: z.string(),
          body: z.string(),
          data: z.record(z.string(), z.unknown()).openapi({
            description: "What it is about (ids and names, as the in-app list shows them), without who caused it (`author_id`).",
          }),
          is_read: z.boolean(),
          read_at: z.string().nullable(),
          created_at: z.string(),
          channels: z
            .array(
              z.object({
                channel: z.enum(NOTIFICATION_CHANNELS),
                status: z.enum(DELIVERY_STATUSES),
                sent_at: z.string().nullable(),
              }),
            )
            .openapi({
              description:
                "How it reached you: `in_app` (your notification list; `sent`, at `created_at`), `email` and `push`, each with its " +
                "delivery's status (held for your digest, queued, sending, sent, skipped, digested — gathered into a digest email, " +
                "whose `sent_at` it shows — or failed) and when it was sent (a push still retried for another device: queued or sending, " +
                "with the first device's time). Empty when it went nowhere (in-app off, and no email or device).",
            }),
        }),
      )
      .openapi({
        description:
          "Every notification the service made for you, newest first, in-app or not (a type you turned off in-app still goes " +
          "by email or push). `is_read`/`read_at` are the in-app list's (one that was never in-app is stored read). " +
          "Never provider message ids, dedupe keys or another user's id.",
      }),
  })
  .openapi("AccountExport");

const SessionSchema = z
  .object({
    id: z.uuid().openapi({
      description:
        "The session's id (the `sid` of its access tokens), for `DELETE sessions/{id}/`. It names the session and authorises nothing: refreshing or signing in with it is impossible.",
    }),
    client: z.string().openapi({
      description:
        'What signed in, from its User-Agent at sign-in: "Chrome on macOS", "Plant Community app on Android", "curl"; "Unknown client" when it sent none. A session begun before sessions were labelled takes its label (and country) from its first refresh that sends a User-Agent; a label once set never changes.',
      example: "Firefox on Windows",
    }),
    country: z.string().nullable().openapi({
      description: "The country it signed in from (ISO 3166-1 alpha-2), as Cloudflare located it; null when unknown. Never an address.",
      example: "NL",
    }),
    created_at: z.string().openapi({ description: "When it signed in" }),
    last_used_at: z.string().openapi({
      description: "When it last renewed its tokens (a client in use does so every 15 minutes or so), else when it signed in",
    }),
    current: z.boolean().openapi({ description: "Whether this is the session making the request" }),
  })
  .openapi("Session");

const SessionParam = z.object({
  id: z.string().max(100).openapi({ description: "A session id from `GET sessions/`" }),
});

const username = z
  .string()
  .trim()
  .min(3, "Username must be at least 3 characters.")
  .max(150, "Username must be at most 150 characters.")
  // `*`, not `+`: an empty name is the length rule's to report, alone.
  // ASCII only (no `u` flag: \w is [A-Za-z0-9_]): no look-alike letters of other scripts (Cyrillic "а"),
  // fullwidth forms, invisible or bidi characters, or NFC/NFD twins can make a name that passes for another.
  .regex(
    /^[\w.@+-]*$/,
    "Enter a valid username. It may contain only letters A–Z and a–z (no accents or other scripts), digits and @/./+/-/_ characters.",
  )
  // Both are sign-in names: a username that is an email address could be someone else's address
  // (and keep its owner from signing up with it, services/users.ts uniquenessErrors).
  // Anything shaped like one (name@domain.tld, whatever the top-level domain), not only what z.email() accepts.
  .refine((name) => !/^[^@]+@[^@]+\.[^@]+$/.test(name), "A username may not be an email address; you can sign in with your email anyway.")
  // Deleted accounts' generated names (services/account-deletion.ts): nobody may pass for one.
  .refine((name) => !name.toLowerCase().startsWith(DELETED_USERNAME_PREFIX), `A username may not start with "${DELETED_USERNAME_PREFIX}".`);
const email = z
  .email("Enter a valid email address.")
  .max(254)
  .transform((v) => v.trim());

/**
 * The rules a new password meets, for the OpenAPI document: services/passwords.ts applies them
 * after validation (so a short one is refused with every reason at once), and the schemas below
 * bound only what is read.
 */
const NEW_PASSWORD = {
  minLength: PASSWORD_MIN_LENGTH,
  maxLength: PASSWORD_MAX_LENGTH,
  description:
    `${PASSWORD_MIN_LENGTH}–${PASSWORD_MAX_LENGTH} characters, not all digits, not too like the username or email, ` +
    "and not a common password (nor a common word with digits or symbols around it, nor one character repeated); " +
    "else 400 VALIDATION_ERROR with every reason under this field.",
};

const RegisterBody = z
  .object({
    username,
    email,
    password: z.string().min(1, "This field is required.").max(1024).openapi(NEW_PASSWORD),
    password_confirm: z.string().optional(),
    first_name: z.string().trim().max(150).optional(),
    last_name: z.string().trim().max(150).optional(),
  })
  // The password policy (the service's rule) is checked with the other fields, so a body refused
  // for a short username or a bad email also says what is wrong with the password: a sign-up form
  // shows every reason at once rather than one round trip each.
  .superRefine(
    (_body, ctx) => {
      const raw = ctx.value as Record<string, unknown>;
      const text = (v: unknown) => (typeof v === "string" ? v : undefined);
      const errors = passwordFieldErrors(
        raw.password as string,
        text(raw.password_confirm),
        { username: text(raw.username), email: text(raw.email) },
        "password",
      );
      for (const [field, messages] of Object.entries(errors))
        for (const message of messages) ctx.addIssue({ code: "custom", message, path: [field] });
    },
    {
      when: (payload) =>
        typeof (payload.value as Record<string, unknown> | null)?.password === "string" &&
        !payload.issues.some((issue) => issue.path?.[0] === "password" || issue.path?.[0] === "password_confirm"),
    },
  )
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

const SecondFactorFields = {
  code: z
    .string()
    .trim()
    .regex(/^\d{6}$/, "Enter the 6-digit code from your authenticator app.")
    .optional()
    .openapi({ description: "The 6-digit code your authenticator app shows now" }),
  recovery_code: z
    .string()
    .trim()
    .min(1)
    .max(64)
    .optional()
    .openapi({ description: "One of the recovery codes answered when two-factor sign-in was turned on (each works once)" }),
};
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
    current_password: z.string().max(1024).openapi({
      description:
        "Required with `email` on accounts that have a password: a bare access token cannot move the account. An account without one (provider sign-in only) changes its email only from a session begun within the last 10 minutes (else 403).",
    }),
    code: SecondFactorFields.code.openapi({
      description: "Required with `email` (or `recovery_code` instead) on an account with two-factor sign-in on: the app's current code",
    }),
    recovery_code: SecondFactorFields.recovery_code.openapi({
      description: "Instead of `code` with `email`: one of the account's recovery codes (each works once)",
    }),
  })
  .partial()
  .strict()
  .openapi("ProfileUpdate");

const AccountDeleteBody = z
  .object({
    current_password: z.string().max(1024).optional().openapi({
      description:
        "Required on accounts that have a password. An account without one (provider sign-in only) sends none, from a session begun within the last 10 minutes (else 403).",
    }),
    code: SecondFactorFields.code.openapi({
      description: "Required (or `recovery_code` instead) on an account with two-factor sign-in on: the app's current code",
    }),
    recovery_code: SecondFactorFields.recovery_code.openapi({
      description: "Instead of `code`: one of the account's recovery codes (each works once)",
    }),
  })
  .strict()
  .openapi("AccountDelete");

// Optional for the validator: one route takes JSON or multipart, and a required part would refuse every JSON update.
const AvatarForm = z
  .strictObject({ avatar: z.any().optional().openapi({ type: "string", format: "binary", description: "JPEG, PNG or WebP, ≤ 2 MiB" }) })
  .openapi("AvatarUpload");

const PasswordChangeBody = z
  .object({ old_password: z.string().min(1).max(1024), new_password: z.string().min(1).max(1024).openapi(NEW_PASSWORD) })
  .openapi("PasswordChange");
const EmailConfirmBody = z.object({ token: z.string().min(10).max(200) }).openapi("EmailChangeConfirm");
const PasswordResetBody = z.object({ email: z.string().trim().min(1).max(254) }).openapi("PasswordResetRequest");
const PasswordResetConfirmBody = z
  .object({
    token: z.string().min(10).max(200),
    new_password: z.string().min(1).max(1024).openapi(NEW_PASSWORD),
    new_password_confirm: z.string().optional(),
  })
  .openapi("PasswordResetConfirm");

const TwoFactorRequiredSchema = ErrorSchema.extend({
  two_factor_token: z.string().openapi({ description: "Send it to `auth/2fa/verify/` with a code, within `expires_in` seconds, once." }),
  expires_in: z.literal(TWO_FACTOR_TOKEN_TTL_S),
}).openapi("TwoFactorRequired");

/** login/ and token/: a wrong password, or a right one on an account with two-factor sign-in. */
const TWO_FACTOR_401 = {
  description:
    "INVALID_CREDENTIALS; or TWO_FACTOR_REQUIRED: the password was right, the account has two-factor sign-in on, and no session was started — finish with `auth/2fa/verify/`",
  content: { "application/json": { schema: z.union([ErrorSchema, TwoFactorRequiredSchema]) } },
};

const oneFactor = (b: { code?: string | undefined; recovery_code?: string | undefined }) =>
  (b.code === undefined) !== (b.recovery_code === undefined);
const oneFactorIssue = { message: "Send either `code` or `recovery_code`.", path: ["code"] };

const TwoFactorVerifyBody = z
  .object({ two_factor_token: z.string().min(1).max(2048), ...SecondFactorFields })
  .strict()
  .refine(oneFactor, oneFactorIssue)
  .openapi("TwoFactorVerify");
const TwoFactorSetupBody = z
  .object({ current_password: z.string().max(1024).optional().openapi({ description: "Your password, asked again." }) })
  .strict()
  .openapi("TwoFactorSetupRequest");
const TwoFactorSetupSchema = z
  .object({
    secret: z.string().openapi({ description: "The shared secret, base32, for typing into the app; shown this once" }),
    otpauth_url: z.string().openapi({ description: "The same as an `otpauth://totp/…` URL, for a QR code" }),
  })
  .openapi("TwoFactorSetup");
const TwoFactorEnableBody = z.object({ code: SecondFactorFields.code.unwrap() }).strict().openapi("TwoFactorEnable");
const TwoFactorEnabledSchema = z
  .object({
    message: z.string(),
    recovery_codes: z.array(z.string()).openapi({ description: "10 single-use codes, shown this once: keep them somewhere safe" }),
    access: z.string().optional(),
    refresh: z.string().optional(),
    token_type: z.literal("Bearer").optional(),
    expires_in: z.number().int().optional(),
  })
  .openapi("TwoFactorEnabled", {
    description: "A bearer caller also gets its new pair (every older session ended); a cookie caller gets new session cookies.",
  });
const TwoFactorDisableBody = z
  .object({
    current_password: z.string().max(1024).optional().openapi({ description: "Your password, asked again." }),
    ...SecondFactorFields,
  })
  .strict()
  .refine(oneFactor, oneFactorIssue)
  .openapi("TwoFactorDisable");
const RecoveryCodesBody = z.object(SecondFactorFields).strict().refine(oneFactor, oneFactorIssue).openapi("RecoveryCodesRequest");
const TwoFactorResetRequestBody = z
  .object({
    two_factor_token: z
      .string()
      .min(1)
      .max(2048)
      .openapi({ description: "The `two_factor_token` of the sign-in's TWO_FACTOR_REQUIRED answer (it stays usable for a code)" }),
  })
  .strict()
  .openapi("TwoFactorResetRequest");
const TwoFactorResetLinkBody = z
  .object({ token: z.string().min(10).max(200).openapi({ description: "The token from the emailed link" }) })
  .strict()
  .openapi("TwoFactorResetLink");
const TwoFactorResetLinkQuery = z.object({
  token: z.string().min(10).max(200).openapi({ description: "The token from the emailed link" }),
});
const TwoFactorResetSchema = z
  .object({
    id: z.string(),
    started_at: z.string().openapi({ description: "When the emailed link was followed" }),
    completes_after: z.string().openapi({
      description: "72 hours later: the first sign-in with the password after this turns two-factor sign-in off, unless cancelled",
    }),
  })
  .openapi("TwoFactorReset");
/** An open reset as the API shows it. */
const twoFactorResetBody = (r: OpenTwoFactorReset) => ({ id: r.id, started_at: r.startedAt, completes_after: r.completesAfter });
const TwoFactorStatusSchema = z
  .object({
    enabled: z.boolean(),
    enabled_at: z.string().nullable(),
    recovery_codes_left: z.number().int(),
    reset: TwoFactorResetSchema.nullable().openapi({
      description:
        "A two-factor reset under way on your account (it completes after `completes_after` unless cancelled: " +
        "`POST 2fa/resets/{id}/cancel/`), or null",
    }),
  })
  .openapi("TwoFactorStatus");
const TwoFactorResetParam = z.object({ id: z.string().max(100).openapi({ description: "A reset id from `GET 2fa/resets/`" }) });

const errors = {
  400: errorResponse(400, "Invalid input"),
  401: errorResponse(401, "Not authenticated"),
  403: errorResponse(403, "CSRF failure"),
  429: errorResponse(429, "Rate limited or account locked"),
};

// ---- Helpers --------------------------------------------------------------------------------

/** Signs in with a login body (username or email, and password), with lockout and rehash (services/accounts). */
function signIn(
  c: Context<AppEnv>,
  login: { username?: string; email?: string; password: string },
  via: SignInVia,
): Promise<{ user: UserRow; pair: TokenPair }> {
  return signInWithPassword(
    c.env,
    getConfig(c.env),
    {
      identifier: (login.username ?? login.email)!,
      password: login.password,
      clientKey: clientIp(c.req.raw),
      device: sessionDeviceOf(c.req.raw),
      via,
    },
    (work) => c.executionCtx.waitUntil(work),
    c.get("logger"),
  );
}

function tokenPairBody(pair: { access: string; refresh: string; accessExpiresIn: number }) {
  return { access: pair.access, refresh: pair.refresh, token_type: "Bearer" as const, expires_in: pair.accessExpiresIn };
}

/** When the caller's session began: its id (the refresh family's) is a UUIDv7, stamped at sign-in. */
function sessionStartedAt(c: Context<AppEnv>): number | undefined {
  const sid = c.get("accessClaims")?.sid;
  return sid ? uuidv7Timestamp(sid) : undefined;
}

async function currentUserRow(c: Context<AppEnv>): Promise<UserRow> {
  const user = await findUserById(c.env, userIdOf(c));
  if (!user) throw new AppError("AUTHENTICATION_REQUIRED", 401, "User no longer exists.");
  return user;
}

// ---- Routes ---------------------------------------------------------------------------------

const FirebaseExchangeBody = z
  .object({ firebase_token: z.string().min(20).max(4096) })
  .strict()
  .openapi("FirebaseTokenExchange");
const FirebaseExchangeSchema = z
  .object({
    access_token: z.string(),
    refresh_token: z.string(),
    token_type: z.literal("Bearer"),
    expires_in: z.number().int(),
    user: UserProfileSchema,
  })
  .openapi("FirebaseSignIn");

const tags = ["Auth"];

const CsrfSchema = z
  .object({
    csrfToken: z.string(),
    signed_in: z.boolean().openapi({
      description:
        "Whether this request's credentials (the access cookie or a bearer token) are a live session. A page asks here, " +
        "where a visitor is an ordinary 200, instead of reading auth/user/ and taking its 401 for 'not signed in'. False " +
        "once the 15-minute access cookie has expired: a client that signed in before then refreshes (auth/token/refresh/).",
    }),
  })
  .openapi("CsrfToken");

/**
 * `GET …/csrf`: the CSRF cookie (bound to the session when there is one), its value, and whether
 * the caller is signed in — the one question a page asks before it knows, answered without a 401.
 */
function addCsrfRoute(app: ReturnType<typeof createRouter>) {
  const route = routeSet({ tags, errors: {} })
    .get("/csrf", "Issue the csrftoken cookie; say whether the caller is signed in")
    .io({}, { 200: jsonBody(CsrfSchema, "CSRF token (also set as the csrftoken cookie)") });
  app.openapi(route, async (c) =>
    c.json(
      {
        csrfToken: await ensureCsrfCookie(c, c.get("authMethod") === "cookie" ? c.get("accessClaims")?.sid : undefined),
        signed_in: Boolean(c.get("user")),
      },
      200,
    ),
  );
}

/** The web client's own CSRF bootstrap, `GET /api/csrf/` (API.md §5d): the same as `auth/csrf/`. */
export function csrfRoutes() {
  const app = createRouter();
  addCsrfRoute(app);
  return app;
}

/** The 503 of a two-factor route that opens the account's authenticator secret; `then`: what the caller can do. */
function secretUnavailable(then: string) {
  return errorResponse(
    503,
    `TWO_FACTOR_UNAVAILABLE: the server cannot open this account's authenticator secret (a configuration error; not counted as a wrong code). ${then}`,
    "TWO_FACTOR_UNAVAILABLE",
  );
}

/** What sign-up answers, by what became of the confirmation link (services/accounts.ts sendVerificationEmail). */
const REGISTERED = {
  sent: "Registration successful. We sent you an email to confirm your address.",
  bounce:
    "Registration successful, but email to this address bounced before, so we sent no confirmation link. If the address is " +
    "right, ask for a new link (POST /api/v1/auth/email/verify/) and we will try it again; if not, change it.",
  complaint:
    "Registration successful, but mail we sent to this address was reported as spam, so we send it nothing, not even a " +
    "confirmation link. Change your address, or ask support to lift the block.",
  "inbox limit":
    "Registration successful, but this address was sent several sign-up emails in the last hour, so we sent no " +
    "confirmation link now. Ask for one later (POST /api/v1/auth/email/verify/).",
  "not sent":
    "Registration successful, but our email service is not answering, so we could not send you a confirmation link. Ask " +
    "for a new link in a few minutes (POST /api/v1/auth/email/verify/).",
} as const;

export function authRoutes() {
  const app = createRouter();
  const open = routeSet({ tags, errors });
  const mine = open.signedIn();

  addCsrfRoute(app);

  const postRegister = open.post("/register", "Create an account (web: sets session cookies)").io(
    { body: requestJson(RegisterBody) },
    { 201: jsonBody(UserEnvelope, "Account created") },
    {
      description:
        "Mails a link confirming the address. None goes to an address our mail provider reported as a hard bounce or a " +
        "spam complaint: `message` then says so, and what to do (a bounced address is tried again by `POST auth/email/verify/`). " +
        "Nor when the inbox was already sent ACCOUNT_MAIL_RATE_LIMIT sign-up links this hour (sign-ups naming one inbox, in any spelling, from many places): " +
        "the account is created and `message` says to ask for a link later. " +
        "When the email provider does not take the link (down, timed out, refusing), the account is created all the same and " +
        "`message` says no link was sent and to ask for one with `POST auth/email/verify/`.",
    },
  );
  app.openapi(postRegister, async (c) => {
    const config = getConfig(c.env);
    await enforceRateLimit(c.env, `register:ip:${clientIp(c.req.raw)}`, config.REGISTER_RATE_LIMIT);
    const body = c.req.valid("json");
    const user = await createUser(c.env, {
      username: body.username,
      email: body.email,
      passwordHash: await hashPassword(body.password),
      firstName: body.first_name,
      lastName: body.last_name,
    });
    const mail = await sendVerificationEmail(c.env, config, user, c.get("logger"));
    await setSessionCookies(c, await issueTokenPair(c.env, config, user.id, sessionDeviceOf(c.req.raw)));
    const said = mail === "complaint" || mail === "bounce" || mail === "not sent" || mail === "inbox limit" ? mail : "sent";
    return c.json({ message: REGISTERED[said], user: userProfile(user) }, 201);
  });

  const postLogin = open
    .post("/login", "Sign in (web: sets session cookies)")
    .io({ body: requestJson(LoginBody) }, { 200: jsonBody(UserEnvelope, "Signed in"), 401: TWO_FACTOR_401 });
  app.openapi(postLogin, async (c) => {
    const { user, pair } = await signIn(c, c.req.valid("json"), "login");
    await setSessionCookies(c, pair);
    return c.json({ message: "Login successful.", user: userProfile(user) }, 200);
  });

  const postToken = open
    .post("/token", "Sign in for mobile/API clients (tokens in the body, no cookies)")
    .io({ body: requestJson(LoginBody) }, { 200: jsonBody(TokenPairSchema, "Token pair"), 401: TWO_FACTOR_401 });
  app.openapi(postToken, async (c) => {
    const { pair } = await signIn(c, c.req.valid("json"), "token");
    return c.json(tokenPairBody(pair), 200);
  });

  const postTwoFactorVerify = open
    .post("/2fa/verify", "Finish a sign-in that answered TWO_FACTOR_REQUIRED: the token and a code (or a recovery code)")
    .io(
      { body: requestJson(TwoFactorVerifyBody) },
      {
        200: jsonBody(
          z.union([UserEnvelope, TokenPairSchema]).openapi({
            description: "What the sign-in that started it answers: login/'s profile and session cookies, or token/'s bearer pair",
          }),
          "Signed in",
        ),
        401: errorResponse(
          401,
          "INVALID_TWO_FACTOR_CODE (counts toward the lockout), or TWO_FACTOR_TOKEN_INVALID (expired, used, or the password changed: sign in again)",
          "INVALID_TWO_FACTOR_CODE",
        ),
        429: errorResponse(
          429,
          "Locked after too many wrong passwords or codes; each lock wrong codes set lasts twice the one before (1 h, 2 h, 4 h… up to 24 h) until a right code; see Retry-After",
          "ACCOUNT_LOCKED",
        ),
        503: secretUnavailable("A recovery code may still work"),
      },
      {
        description:
          "The token lives 5 minutes and starts one session; a wrong code leaves it usable until then. A code is accepted once " +
          "(the current 30-second step, or one step either side for clock skew), a recovery code once. A password stored in " +
          "older hashing parameters is upgraded by the sign-in this completes (never by a wrong code).",
      },
    );
  app.openapi(postTwoFactorVerify, async (c) => {
    const body = c.req.valid("json");
    const { user, pair, via } = await completeTwoFactorSignIn(
      c.env,
      getConfig(c.env),
      { token: body.two_factor_token, code: body.code, recoveryCode: body.recovery_code, device: sessionDeviceOf(c.req.raw) },
      c.get("logger"),
    );
    if (via === "login") {
      await setSessionCookies(c, pair);
      return c.json({ message: "Login successful.", user: userProfile(user) }, 200);
    }
    return c.json(tokenPairBody(pair), 200);
  });

  const getTwoFactor = mine
    .get("/2fa", "Whether two-factor sign-in is on, since when, and how many recovery codes are left")
    .io({}, { 200: jsonBody(TwoFactorStatusSchema, "Status (never the secret or the codes)") });
  app.openapi(getTwoFactor, async (c) => {
    const [status, [reset]] = await Promise.all([twoFactorStatus(c.env, userIdOf(c)), openTwoFactorResets(c.env, userIdOf(c))]);
    return c.json(
      {
        enabled: status.enabled,
        enabled_at: status.enabledAt,
        recovery_codes_left: status.recoveryCodesLeft,
        reset: reset ? twoFactorResetBody(reset) : null,
      },
      200,
    );
  });

  const postTwoFactorSetup = mine
    .post("/2fa/setup", "Start setting up two-factor sign-in: a new secret for your authenticator app, not active yet")
    .io(
      { body: requestJson(TwoFactorSetupBody, false) },
      {
        200: jsonBody(TwoFactorSetupSchema, "The secret, this once; turn it on with 2fa/enable/"),
        409: errorResponse(409, "On already, or the account has no password (provider sign-in only)", "INVALID_STATE"),
        429: errorResponse(429, "Locked after too many wrong passwords; see Retry-After", "ACCOUNT_LOCKED"),
      },
      { description: "Asks for `current_password` (a wrong one counts toward the lockout). Calling it again replaces a pending secret." },
    );
  app.openapi(postTwoFactorSetup, async (c) => {
    const body = (c.req.valid("json") as z.infer<typeof TwoFactorSetupBody> | undefined) ?? {};
    const setup = await beginTwoFactorSetup(
      c.env,
      getConfig(c.env),
      await currentUserRow(c),
      { currentPassword: body.current_password, sessionStartedAt: sessionStartedAt(c) },
      c.get("logger"),
    );
    return c.json({ secret: setup.secret, otpauth_url: setup.otpauthUrl }, 200);
  });

  const postTwoFactorEnable = mine
    .post("/2fa/enable", "Turn two-factor sign-in on with a code from the app; answers the recovery codes and ends every other session")
    .io(
      { body: requestJson(TwoFactorEnableBody) },
      {
        200: jsonBody(TwoFactorEnabledSchema, "On"),
        400: errorResponse(
          400,
          "INVALID_TWO_FACTOR_CODE: the code does not match the pending secret (counts toward the lockout)",
          "INVALID_TWO_FACTOR_CODE",
        ),
        409: errorResponse(409, "No pending setup, or on already", "INVALID_STATE"),
        429: errorResponse(429, "Locked after too many wrong passwords or codes; see Retry-After", "ACCOUNT_LOCKED"),
        503: secretUnavailable("Start the setup again"),
      },
    );
  app.openapi(postTwoFactorEnable, async (c) => {
    const session = accessClaimsOf(c);
    const { recoveryCodes, pair } = await enableTwoFactor(
      c.env,
      getConfig(c.env),
      await currentUserRow(c),
      c.req.valid("json").code,
      sessionDeviceOf(c.req.raw),
      session,
      c.get("logger"),
    );
    const message = "Two-factor sign-in is on. Keep these recovery codes somewhere safe: they are shown this once.";
    if (c.get("authMethod") === "cookie") {
      await setSessionCookies(c, pair);
      return c.json({ message, recovery_codes: recoveryCodes }, 200);
    }
    return c.json({ message, recovery_codes: recoveryCodes, ...tokenPairBody(pair) }, 200);
  });

  const postTwoFactorDisable = mine.post("/2fa/disable", "Turn two-factor sign-in off: your password and a code (or a recovery code)").io(
    { body: requestJson(TwoFactorDisableBody) },
    {
      200: jsonBody(MessageSchema, "Off"),
      400: errorResponse(400, "A wrong password, or INVALID_TWO_FACTOR_CODE (both count toward the lockout)"),
      409: errorResponse(409, "Two-factor sign-in is not on", "INVALID_STATE"),
      429: errorResponse(429, "Locked after too many wrong passwords or codes; see Retry-After", "ACCOUNT_LOCKED"),
      503: secretUnavailable("A recovery code may still work"),
    },
  );
  app.openapi(postTwoFactorDisable, async (c) => {
    const body = c.req.valid("json");
    await disableTwoFactor(
      c.env,
      getConfig(c.env),
      await currentUserRow(c),
      {
        currentPassword: body.current_password,
        sessionStartedAt: sessionStartedAt(c),
        code: body.code,
        recoveryCode: body.recovery_code,
      },
      c.get("logger"),
    );
    return c.json({ message: "Two-factor sign-in is off." }, 200);
  });

  const postRecoveryCodes = mine.post("/2fa/recovery-codes", "Replace your recovery codes with 10 new ones (the old ones stop working)").io(
    { body: requestJson(RecoveryCodesBody) },
    {
      200: jsonBody(z.object({ recovery_codes: z.array(z.string()) }), "The new codes, shown this once"),
      400: errorResponse(400, "INVALID_TWO_FACTOR_CODE (counts toward the lockout)", "INVALID_TWO_FACTOR_CODE"),
      409: errorResponse(409, "Two-factor sign-in is not on", "INVALID_STATE"),
      429: errorResponse(429, "Locked after too many wrong codes; see Retry-After", "ACCOUNT_LOCKED"),
      503: secretUnavailable("A recovery code may still work"),
    },
  );
  app.openapi(postRecoveryCodes, async (c) => {
    const body = c.req.valid("json");
    const codes = await replaceRecoveryCodes(
      c.env,
      getConfig(c.env),
      await currentUserRow(c),
      { code: body.code, recoveryCode: body.recovery_code },
      c.get("logger"),
    );
    return c.json({ recovery_codes: codes }, 200);
  });

  // ---- Two-factor recovery without the app or the codes (services/two-factor-reset.ts) ----

  const postTwoFactorReset = open
    .post("/2fa/reset", "Lost the authenticator and the recovery codes: email a link that starts a 72-hour two-factor reset")
    .io(
      { body: requestJson(TwoFactorResetRequestBody) },
      {
        202: jsonBody(MessageSchema, "Accepted (the same answer whether a mail was sent or not)"),
        401: errorResponse(
          401,
          "TWO_FACTOR_TOKEN_INVALID: the sign-in's token expired, was used, or the password changed (sign in again)",
          "TWO_FACTOR_TOKEN_INVALID",
        ),
      },
      {
        description:
          "At the second sign-in step, with the password already checked. Mails a single-use link (valid 1 hour) to the account's " +
          "confirmed address; nothing starts until it is followed (`POST 2fa/reset/start/`). No mail goes to an unconfirmed address, " +
          "nor more than 3 an hour per account (and the address's own limit on account mail), and the answer is the same either way.",
      },
    );
  app.openapi(postTwoFactorReset, async (c) => {
    const { mail } = await requestTwoFactorReset(c.env, getConfig(c.env), c.req.valid("json").two_factor_token, c.get("logger"));
    // The mail after the answer: neither it nor its timing says whether one was sent.
    c.executionCtx.waitUntil(mail());
    return c.json(
      {
        message:
          "If your account's email address is confirmed, we sent it a link. Following it starts a 72-hour wait, after which signing in with your password turns two-factor sign-in off.",
      },
      202,
    );
  });

  const getTwoFactorResetStart = open.get("/2fa/reset/start", "What an emailed two-factor reset link would do (changes nothing)").io(
    { query: TwoFactorResetLinkQuery },
    {
      200: jsonBody(
        z.object({
          valid: z.boolean().openapi({ description: "Whether the link can still start a reset" }),
          link_expires_at: z.string().nullable(),
          message: z.string(),
        }),
        "About the link",
      ),
    },
    {
      description: "For a page that asks before it starts: mail scanners follow links, so only `POST 2fa/reset/start/` starts the wait.",
    },
  );
  app.openapi(getTwoFactorResetStart, async (c) => {
    const { valid, linkExpiresAt } = await describeTwoFactorResetLink(c.env, c.req.valid("query").token);
    c.header("Cache-Control", "private, no-store");
    return c.json(
      {
        valid,
        link_expires_at: linkExpiresAt,
        message: valid
          ? "Confirming (POST) starts a 72-hour wait; then signing in with your password turns two-factor sign-in off. You are told at once and can cancel until then."
          : "This link is invalid, expired or used.",
      },
      200,
    );
  });

  const postTwoFactorResetStart = open
    .post("/2fa/reset/start", "Follow the emailed link: start the 72-hour wait before two-factor sign-in turns off")
    .io(
      { body: requestJson(TwoFactorResetLinkBody) },
      {
        200: jsonBody(z.object({ message: z.string(), reset: TwoFactorResetSchema }), "Started"),
        400: errorResponse(400, "INVALID_TOKEN: invalid, expired or used", "INVALID_TOKEN"),
        409: errorResponse(409, "A reset is already under way on this account", "INVALID_STATE"),
      },
      {
        description:
          "The link works once. The owner is told at once: a security notice (in-app, every signed-in session, and email); its email " +
          "carries a one-click cancel link. Any signed-in session can cancel too (`2fa/resets/`). After the wait, the first sign-in with " +
          "the right password turns two-factor sign-in off, deletes the recovery codes and ends every other session.",
      },
    );
  app.openapi(postTwoFactorResetStart, async (c) => {
    const reset = await startTwoFactorReset(c.env, getConfig(c.env), c.req.valid("json").token, c.get("logger"));
    return c.json(
      {
        message: "The two-factor reset has started. After the wait, sign in with your password.",
        reset: twoFactorResetBody(reset),
      },
      200,
    );
  });

  const postTwoFactorResetCancel = open.post("/2fa/reset/cancel", "Cancel a two-factor reset with the emailed cancel link (single use)").io(
    { body: requestJson(TwoFactorResetLinkBody) },
    {
      200: jsonBody(MessageSchema, "Cancelled: two-factor sign-in stays on"),
      400: errorResponse(400, "INVALID_TOKEN: invalid or used, or the reset is over", "INVALID_TOKEN"),
    },
  );
  app.openapi(postTwoFactorResetCancel, async (c) => {
    await cancelTwoFactorResetByLink(c.env, c.req.valid("json").token, c.get("logger"));
    return c.json({ message: "The two-factor reset was cancelled. Two-factor sign-in stays on." }, 200);
  });

  const getTwoFactorResets = mine
    .get("/2fa/resets", "Two-factor resets under way on your account (at most one)")
    .io({}, { 200: jsonBody(z.array(TwoFactorResetSchema), "Open resets") });
  app.openapi(getTwoFactorResets, async (c) => {
    const resets = await openTwoFactorResets(c.env, userIdOf(c));
    c.header("Cache-Control", "private, no-store");
    return c.json(resets.map(twoFactorResetBody), 200);
  });

  const postTwoFactorResetCancelMine = mine.post("/2fa/resets/{id}/cancel", "Cancel a two-factor reset under way on your account").io(
    { params: TwoFactorResetParam },
    {
      200: jsonBody(MessageSchema, "Cancelled: two-factor sign-in stays on"),
      404: errorResponse(404, "Not an open reset of yours", "NOT_FOUND"),
    },
    { description: "Any signed-in session can: a cancel always wins over a completion that has not landed yet." },
  );
  app.openapi(postTwoFactorResetCancelMine, async (c) => {
    await cancelTwoFactorReset(c.env, userIdOf(c), c.req.valid("param").id, c.get("logger"));
    return c.json({ message: "The two-factor reset was cancelled. Two-factor sign-in stays on." }, 200);
  });

  const firebaseExchange = open
    .post("/firebase-token-exchange", "Sign in from the mobile app with a Firebase ID token (tokens in the body)")
    .io(
      { body: requestJson(FirebaseExchangeBody) },
      {
        200: jsonBody(FirebaseExchangeSchema, "Signed in: our token pair and the profile"),
        401: errorResponse(
          401,
          "FIREBASE_TOKEN_INVALID: not signed by Firebase, for another project, or expired",
          "FIREBASE_TOKEN_INVALID",
        ),
        403: errorResponse(
          403,
          "EMAIL_NOT_VERIFIED (an account has this email, unverified in Firebase), ACCOUNT_DISABLED, or FORBIDDEN (the account with this email has two-factor sign-in on: never linked by its address)",
          "EMAIL_NOT_VERIFIED",
        ),
        503: errorResponse(503, "FIREBASE_NOT_CONFIGURED on this deployment", "FIREBASE_NOT_CONFIGURED"),
      },
      {
        description:
          "The ID token is verified against Google's securetoken keys (RS256; aud = the Firebase project id; iss = https://securetoken.google.com/<project id>; exp, iat, auth_time, sub). " +
          "A Firebase uid seen before signs in to its account; an existing account with the same email is linked only when Firebase verified the email; otherwise a new account is made.",
      },
    );
  app.openapi(firebaseExchange, async (c) => {
    const config = getConfig(c.env);
    await enforceRateLimit(c.env, `firebase:ip:${clientIp(c.req.raw)}`, config.LOGIN_RATE_LIMIT);
    const { user, pair } = await signInWithFirebase(c.env, config, c.req.valid("json").firebase_token, sessionDeviceOf(c.req.raw));
    return c.json(
      {
        access_token: pair.access,
        refresh_token: pair.refresh,
        token_type: "Bearer" as const,
        expires_in: pair.accessExpiresIn,
        user: userProfile(user),
      },
      200,
    );
  });

  const postTokenRefresh = open.post("/token/refresh", "Rotate a refresh token (cookie or body)").io(
    { body: requestJson(RefreshBody, false) },
    { 200: jsonBody(z.union([TokenPairSchema, z.object({ message: z.string(), expires_in: z.number() })]), "New token pair") },
    {
      description:
        "The presented refresh token is revoked and a new pair issued. Presenting it again within 60 seconds (two tabs " +
        "refreshing at once), while that new pair's refresh token is still unused, returns the same new pair, even past the " +
        "session's refresh limit; otherwise it counts as theft and revokes the whole family (the session " +
        "ends everywhere, its WebSockets close with 4401), even past the session's refresh limit, which otherwise answers 429. Cookie-based refresh needs the session's X-CSRFToken header and " +
        "answers with cookies; body-based refresh answers with tokens. A client whose answer was lost (a dropped connection) " +
        "presents the same token again within those 60 seconds and gets the pair it missed. Every 401 here means sign in " +
        "again, TOKEN_EXPIRED included (the refresh token's own lifetime is over).",
    },
  );
  app.openapi(postTokenRefresh, async (c) => {
    const config = getConfig(c.env);
    const fromBody = c.req.valid("json")?.refresh;
    const fromCookie = fromBody ? undefined : getCookie(c, REFRESH_COOKIE);
    const token = fromBody ?? fromCookie;
    const claims = token ? await verifyToken(config, token, "refresh").catch(() => null) : null;
    // A token we signed, unexpired, spends its own session's budget: people behind one address (a
    // household, a carrier's NAT) each refresh every 15 minutes and must not spend each other's.
    // Anything else (no token, a forged or expired one) spends the address's budget.
    if (!claims?.fam) await enforceRateLimit(c.env, `refresh:ip:${clientIp(c.req.raw)}`, config.REFRESH_RATE_LIMIT);
    if (!token) {
      throw new AppError("VALIDATION_ERROR", 400, "No refresh token provided.", { refresh: ["This field is required."] });
    }
    // Before the session's budget: the refresh cookie goes with any same-site page's request, and
    // one that cannot show the CSRF token must not spend its visitor's refreshes (signing them out).
    if (fromCookie) await assertCsrf(c, claims?.fam);
    // Over the budget nothing is issued, but a rotated-away token still ends its session (theft).
    const overLimit = claims?.fam
      ? await rateLimitRefusal(c.env, `refresh:session:${claims.fam}`, config.REFRESH_SESSION_RATE_LIMIT)
      : undefined;
    const pair = await rotateRefreshToken(
      c.env,
      config,
      token,
      sessionDeviceOf(c.req.raw),
      (userId, familyId, stolen) => endSession(c.env, config, userId, familyId, { stolen, logger: c.get("logger") }),
      overLimit,
    );
    if (fromCookie) {
      await setSessionCookies(c, pair);
      return c.json({ message: "Token refreshed.", expires_in: pair.accessExpiresIn }, 200);
    }
    return c.json(tokenPairBody(pair), 200);
  });

  const postLogout = mine
    .post("/logout", "Sign out: end this session (its refresh and access tokens, its WebSockets)")
    .io({ body: requestJson(RefreshBody, false) }, { 200: jsonBody(MessageSchema, "Signed out") });
  app.openapi(postLogout, async (c) => {
    const config = getConfig(c.env);
    const claims = c.get("accessClaims")!;
    const refresh = c.req.valid("json")?.refresh ?? getCookie(c, REFRESH_COOKIE);
    const families = new Set<string>(claims.sid ? [claims.sid] : []);
    if (refresh) {
      const refreshClaims = await verifyToken(config, refresh, "refresh").catch(() => null);
      if (refreshClaims?.fam && refreshClaims.sub === claims.sub) families.add(refreshClaims.fam);
    }
    await revokeAccessToken(c.env, claims.jti, claims.exp);
    for (const family of families) await endSession(c.env, config, claims.sub, family, { logger: c.get("logger") });
    clearSessionCookies(c);
    return c.json({ message: "Logged out." }, 200);
  });

  const postLogoutAll = mine
    .post("/logout-all", "Sign out everywhere: end every session of this account, this one included")
    .io(
      {},
      { 200: jsonBody(MessageSchema, "Signed out everywhere") },
      { description: "Every refresh and access token of the account stops working at once and every WebSocket closes with 4401." },
    );
  app.openapi(postLogoutAll, async (c) => {
    await endEverySession(c.env, userIdOf(c), { logger: c.get("logger") });
    clearSessionCookies(c);
    return c.json({ message: "Logged out everywhere." }, 200);
  });

  const getSessions = mine.get("/sessions", "Where you're signed in: your live sessions, most recently used first").io(
    {},
    { 200: jsonBody(z.array(SessionSchema), "Your sessions") },
    {
      description:
        "Every session that can still refresh: each sign-in (web, app, API) is one, until it signs out, is ended here, or every " +
        "session ends (sign-out everywhere, a password change or reset). Enough to recognise each — the client, the country, " +
        "when it signed in and was last used, and which one is this one — and never an address or the raw User-Agent.",
    },
  );
  app.openapi(getSessions, async (c) => {
    const current = c.get("accessClaims")?.sid;
    const sessions = await listSessions(c.env, userIdOf(c));
    c.header("Cache-Control", "private, no-store");
    return c.json(
      sessions.map((s) => ({ ...s, current: s.id === current })),
      200,
    );
  });

  const deleteSession = mine.delete("/sessions/{id}", "Sign out one of your sessions (a lost phone), leaving the others signed in").io(
    { params: SessionParam },
    {
      204: { description: "Ended. Ending this session signs this client out (a cookie caller's cookies are cleared)" },
      404: errorResponse(404, "Not one of your live sessions (unknown, ended already, or someone else's)", "NOT_FOUND"),
    },
    {
      description:
        "Exactly what that session's own sign-out does: its refresh token stops working, its access tokens are refused at once, " +
        "its WebSockets close with 4401 and the push devices it subscribed are unsubscribed. The other sessions carry on.",
    },
  );
  app.openapi(deleteSession, async (c) => {
    const config = getConfig(c.env);
    const claims = c.get("accessClaims")!;
    const { id } = c.req.valid("param");
    await endOwnSession(c.env, config, userIdOf(c), id, c.get("logger"));
    if (id === claims.sid) {
      // This client's own session: a sign-out, as auth/logout/ does it.
      await revokeAccessToken(c.env, claims.jti, claims.exp);
      clearSessionCookies(c);
    }
    return c.body(null, 204);
  });

  const getUser = mine.get("/user", "The signed-in user's profile").io({}, { 200: jsonBody(UserProfileSchema, "Profile") });
  app.openapi(getUser, async (c) => c.json(userProfile(await currentUserRow(c)), 200));

  const getUserStorage = mine.get("/user/storage", "How much of your photo storage allowance your photos take").io(
    {},
    { 200: jsonBody(StorageSchema, "Your storage") },
    {
      description:
        "The bytes of the photos your requests, disease requests, plants, forum attachments and avatar keep stored, each photo " +
        "counted once (a photo someone else also keeps counts for each of you), and your allowance (`USER_STORAGE_BYTES`). An " +
        "upload that would go over it is refused with 413 `STORAGE_FULL` before anything is stored; deleting what shows a photo " +
        "frees its bytes.",
    },
  );
  app.openapi(getUserStorage, async (c) => {
    const { usedBytes, limitBytes } = await storageUsage(c.env, userIdOf(c));
    c.header("Cache-Control", "private, no-store");
    return c.json({ used_bytes: usedBytes, limit_bytes: limitBytes }, 200);
  });

  const getUserExport = mine.get("/user/export", "Download everything the service holds about you, as one JSON file").io(
    {},
    {
      200: {
        description:
          `The export, as a download (\`Content-Disposition: attachment; filename="plant-community-<username>-<YYYY-MM-DD>.json"\`, \`Cache-Control: no-store\`), ` +
          "streamed: the lists that grow without a cap (requests, diagnoses, forum posts, comments, votes, notifications, …) are read and written 500 rows at a time (no `Content-Length`).",
        headers: z.object({ "Content-Disposition": z.string(), "Cache-Control": z.literal("no-store") }),
        content: { "application/json": { schema: AccountExportSchema } },
      },
      429: errorResponse(429, "More than ACCOUNT_EXPORT_RATE_LIMIT exports this hour (default 5); see Retry-After", "RATE_LIMITED"),
    },
    {
      description:
        "Your profile, sign-in methods, preferences and everything you made or chose, each part in the shape its own route answers. " +
        "Never in it: secrets (password hash, tokens, session ids, emailed links, the calendar feed's URL, push endpoints and keys, " +
        "Idempotency-Keys) or anyone else's private data (other people's votes are counts only).",
    },
  );
  app.openapi(getUserExport, async (c) => {
    // Streamed: the lists with no cap are read and written a page at a time.
    const { document, body } = await exportAccountStream(c.env, c.get("user")!);
    // Usernames are [\w.@+-], but names made for provider sign-ins are kept to that too, here.
    const name = document.account.username.replace(/[^\w.@+-]/g, "_");
    return new Response(body, {
      status: 200,
      headers: {
        "Content-Type": "application/json",
        "Content-Disposition": `attachment; filename="plant-community-${name}-${document.exported_at.slice(0, 10)}.json"`,
        "Cache-Control": "no-store",
      },
      // A stream the typed `c.json` cannot express; the body is the AccountExportSchema document.
    }) as never;
  });

  const patchUser = mine.patch("/user", "Update the profile (JSON), or upload an avatar (multipart field `avatar`)").io(
    {
      body: {
        content: {
          "application/json": { schema: ProfilePatch },
          "multipart/form-data": { schema: AvatarForm },
        },
        required: true,
      },
    },
    {
      200: jsonBody(UserProfileSchema, "Updated profile"),
      409: errorResponse(
        409,
        "EMAIL_SUPPRESSED: mail to the new `email` was reported as spam, so no confirmation link can reach it (use another address, or ask support); nothing changed",
        "EMAIL_SUPPRESSED",
      ),
      413: errorResponse(
        413,
        "The avatar is over 2 MiB (`FILE_TOO_LARGE`), or would take the account past its storage allowance (`STORAGE_FULL`); nothing changed",
        "FILE_TOO_LARGE",
      ),
      429: errorResponse(
        429,
        "Email change asked too often (per account, or to that address), or avatars uploaded too often (`AVATAR_RATE_LIMIT`); see Retry-After",
        "RATE_LIMITED",
      ),
      503: errorResponse(
        503,
        "The email provider did not take the confirmation link for the new `email`: nothing is pending. Down, timed out or answering 429/5xx: the counts the request spent are given back (the per-account one only when the notice to the current address did not go out either); try again after `Retry-After`. Refusing the message itself (a 4xx other than 429): `message` says so, the counts stay spent and there is no `Retry-After` — retrying will not help",
        "SERVICE_UNAVAILABLE",
      ),
    },
  );
  app.openapi(patchUser, async (c) => {
    const user = await currentUserRow(c);
    const contentType = c.req.header("Content-Type") ?? "";
    if (contentType.toLowerCase().startsWith("multipart/form-data")) {
      await updateAvatar(c.env, user.id, (c.req.valid("form") as z.infer<typeof AvatarForm>).avatar);
    } else {
      const {
        email: newEmail,
        current_password: currentPassword,
        code,
        recovery_code: recoveryCode,
        ...changes
      } = c.req.valid("json") as z.infer<typeof ProfilePatch>;
      // The address changes only when the new one confirms the emailed link (see pending_email).
      if (newEmail !== undefined) {
        // When this session began: its id (the refresh family's) is a UUIDv7, stamped at sign-in.
        const session = accessClaimsOf(c);
        const sessionStartedAt = session.sid ? uuidv7Timestamp(session.sid) : undefined;
        await requestEmailChange(
          c.env,
          getConfig(c.env),
          user,
          { newEmail, currentPassword, secondFactor: { code, recoveryCode }, sessionStartedAt, session },
          c.get("logger"),
        );
      }
      await updateProfile(c.env, user.id, changes);
    }
    return c.json(userProfile(await currentUserRow(c)), 200);
  });

  const postUserDelete = mine
    .post("/user/delete", "Delete your account: its private data goes, what others built on stays under an anonymous name")
    .io(
      { body: requestJson(AccountDeleteBody, false) },
      {
        200: jsonBody(MessageSchema, "Deleted: every session has ended"),
        400: errorResponse(
          400,
          "Two-factor sign-in is on and no `code` or `recovery_code` was sent (`VALIDATION_ERROR` naming `code`), or a wrong one (`INVALID_TWO_FACTOR_CODE`)",
          "INVALID_TWO_FACTOR_CODE",
        ),
        403: errorResponse(403, "An account without a password, from a session older than 10 minutes: sign in again first"),
        409: errorResponse(
          409,
          "A staff account (author, moderator, editor, admin): an administrator changes its role first",
          "INVALID_STATE",
        ),
        429: errorResponse(429, "Locked after too many wrong passwords; see Retry-After", "ACCOUNT_LOCKED"),
      },
      {
        description:
          "Cannot be undone. Deleted at once: identification and diagnosis requests (with their photos), collections and plants, " +
          "saved care cards, reminders, notifications and preferences, events you organised and your RSVPs, forum subscriptions " +
          "and reactions, blog comments awaiting moderation, linked sign-in providers. Kept, under a generated name (`deleted-…`): " +
          "your forum topics and posts, published blog comments, and proposals on other people's requests (your votes and proposals stop counting toward any consensus). " +
          "Your username is retired for good (in any case; old posts still mention it, so nobody may register it again); " +
          "your email address is free again at once. The old address gets a last email saying so.",
      },
    );
  app.openapi(postUserDelete, async (c) => {
    const user = await currentUserRow(c);
    const body = (c.req.valid("json") as z.infer<typeof AccountDeleteBody> | undefined) ?? {};
    const sid = c.get("accessClaims")?.sid;
    await deleteAccount(
      c.env,
      getConfig(c.env),
      user,
      {
        currentPassword: body.current_password,
        secondFactor: { code: body.code, recoveryCode: body.recovery_code },
        sessionStartedAt: sid ? uuidv7Timestamp(sid) : undefined,
      },
      accessClaimsOf(c),
      c.get("logger"),
    );
    clearSessionCookies(c);
    return c.json({ message: "Your account was deleted." }, 200);
  });

  const postVerify = mine.post("/email/verify", "Send the link that confirms your current email address again").io(
    {},
    {
      202: jsonBody(z.object({ message: z.string() }), "Sent (confirm it with POST email/confirm/)"),
      409: errorResponse(
        409,
        "Your address is already confirmed (`INVALID_STATE`), or mail to it was reported as spam (`EMAIL_SUPPRESSED`: use another address, or ask support)",
        "EMAIL_SUPPRESSED",
      ),
      429: errorResponse(429, "Asked too often; see Retry-After", "RATE_LIMITED"),
      503: errorResponse(
        503,
        "The email provider did not take the link: nothing was sent. Down, timed out or answering 429/5xx: the request is not counted; try again after `Retry-After`. Refusing the message itself (a 4xx other than 429): `message` says so, the request stays counted and there is no `Retry-After` — retrying will not help",
        "SERVICE_UNAVAILABLE",
      ),
    },
    {
      description:
        "An address that hard-bounced is tried again by this request (the bounce is lifted; if it bounces again, mail to it " +
        "stops again). One whose holder reported our mail as spam is not: 409 `EMAIL_SUPPRESSED`, nothing sent.",
    },
  );
  app.openapi(postVerify, async (c) => {
    const user = await currentUserRow(c);
    await resendVerificationEmail(c.env, getConfig(c.env), user, c.get("logger"));
    return c.json({ message: `We sent a confirmation link to ${user.email}.` }, 202);
  });

  const postEmailConfirm = open
    .post("/email/confirm", "Confirm an email change, or your address at sign-up, with the token from the emailed link (single use)")
    .io(
      { body: requestJson(EmailConfirmBody) },
      {
        200: jsonBody(z.object({ message: z.string(), email: z.string() }), "Email changed"),
        409: errorResponse(409, "Another account has this address now"),
      },
      {
        description:
          "Until this call the account keeps its old address, and the new one claims nothing (registration, sign-in, OAuth " +
          "linking and password reset ignore it). Confirming marks the address verified and invalidates outstanding reset links. " +
          "A change whose asking session has ended since (signed out, ended from `sessions/`, or for refresh-token reuse) answers 400 INVALID_TOKEN. " +
          "A link sent again after it worked (an answer lost, or a mail scanner's visit sent it first) answers the same 200 and does nothing " +
          "again, while it is unexpired and the account is still at its address. " +
          "Send it with the account's session (bearer, or cookies and X-CSRFToken) when you can: only a confirmation from inside " +
          "the account also proves the password (and the other sign-ins) are the address holder's. A password not proven so is " +
          "removed when a Google, GitHub or Firebase sign-in is first linked to the account by its address, with the linked " +
          "sign-ins that do not vouch for the address and every session (the owner is told).",
      },
    );
  app.openapi(postEmailConfirm, async (c) => {
    const before = c.req.valid("json").token;
    const user = await confirmEmailChange(c.env, before, c.get("user")?.id);
    return c.json({ message: "Your email address is confirmed.", email: user.email }, 200);
  });

  const postPasswordChange = mine
    .post("/password/change", "Change the password; ends every session (this one continues with the returned pair)")
    .io(
      { body: requestJson(PasswordChangeBody) },
      {
        200: jsonBody(
          z.union([z.object({ message: z.string() }).extend(TokenPairSchema.shape), z.object({ message: z.string() })]).openapi({
            description:
              "A bearer caller gets its new pair here (its old tokens are revoked: store these); a cookie caller gets `message` alone and new session cookies.",
          }),
          "Changed",
        ),
      },
    );
  app.openapi(postPasswordChange, async (c) => {
    const body = c.req.valid("json");
    const pair = await changePassword(
      c.env,
      getConfig(c.env),
      await currentUserRow(c),
      { oldPassword: body.old_password, newPassword: body.new_password, device: sessionDeviceOf(c.req.raw) },
      c.get("logger"),
    );
    // This client continues in a new session with the returned pair; every session before it is out.
    if (c.get("authMethod") === "cookie") {
      await setSessionCookies(c, pair);
      return c.json({ message: "Password changed." }, 200);
    }
    return c.json({ message: "Password changed.", ...tokenPairBody(pair) }, 200);
  });

  const postPasswordReset = open.post("/password/reset", "Email a single-use reset link (always 200: no account enumeration)").io(
    { body: requestJson(PasswordResetBody) },
    { 200: jsonBody(MessageSchema, "Request accepted") },
    {
      description:
        "The same answer whatever the address, including one we send no mail to (a hard bounce or spam complaint): a " +
        "signed-in owner tries a bounced address again with `POST auth/email/verify/`; otherwise support lifts the block.",
    },
  );
  app.openapi(postPasswordReset, async (c) => {
    const config = getConfig(c.env);
    await enforceRateLimit(c.env, `reset:ip:${clientIp(c.req.raw)}`, config.REGISTER_RATE_LIMIT);
    const { email: address } = c.req.valid("json");
    // The lookup and mail happen after the response, so timing does not reveal accounts.
    c.executionCtx.waitUntil(requestPasswordReset(c.env, config, address, c.get("logger")));
    return c.json({ message: "If an account exists for that email, a password reset link has been sent." }, 200);
  });

  const postPasswordResetConfirm = open
    .post("/password/reset/confirm", "Set a new password with an emailed reset token (single use)")
    .io({ body: requestJson(PasswordResetConfirmBody) }, { 200: jsonBody(MessageSchema, "Password set") });
  app.openapi(postPasswordResetConfirm, async (c) => {
    const body = c.req.valid("json");
    await confirmPasswordReset(
      c.env,
      { token: body.token, newPassword: body.new_password, confirm: body.new_password_confirm },
      c.get("logger"),
    );
    return c.json({ message: "Your password has been reset. You can now sign in." }, 200);
  });

  const postWsTicket = mine
    .post("/ws-ticket", "A single-use, 60-second ticket for opening a WebSocket from a browser")
    .io({}, { 200: jsonBody(z.object({ ticket: z.string(), expires_in: z.literal(60) }), "Ticket") });
  app.openapi(postWsTicket, async (c) => {
    const ticket = await issueWsTicket(c.env, userIdOf(c), c.get("accessClaims")?.sid);
    return c.json({ ticket, expires_in: WS_TICKET_TTL_S as 60 }, 200);
  });

  return app;
}

export { PublicUserSchema, UserProfileSchema, publicUser };
