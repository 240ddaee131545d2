/**
 * The Worker's settings as a schema (API.md §7), apart from the Worker's own types so that the
 * local stack's script (scripts/start.ts) can list them too. src/config.ts parses them.
 */
import { z } from "zod";

const ms = z.coerce.number().int().positive();
const flag = z.enum(["true", "false", "1", "0", ""]).transform((v) => v === "true" || v === "1");
const url = z.url();
/** "limit/windowSeconds", e.g. "5/900" = 5 per 15 minutes. */
const rate = z
  .string()
  .regex(/^\d+\/\d+$/, 'expected "limit/windowSeconds"')
  .transform((v) => {
    const [limit, windowS] = v.split("/").map(Number) as [number, number];
    return { limit, windowMs: windowS * 1000 };
  });
const optionalSecret = z
  .string()
  .optional()
  .transform((v) => v ?? "");
/**
 * Where clients reach this API, as an origin: `https://api.example.com` (no path, no trailing
 * slash). Every absolute URL the API hands out is built on it, never on the Host header.
 */
const publicOrigin = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === "https:" || u.protocol === "http:") && u.origin === v;
  } catch {
    return false;
  }
}, "expected an absolute http(s) URL without path or trailing slash, e.g. https://api.example.com");

export const ConfigSchema = z.object({
  ENVIRONMENT: z.enum(["local", "test", "staging", "production"]),
  APP_VERSION: z.string().min(1),
  PLANT_ID_API_URL: url,
  PLANTNET_API_URL: url,
  TREFLE_API_URL: url,
  OPENAI_API_URL: url,
  OPENAI_MODEL: z.string().min(1),
  EMAIL_API_URL: url,
  EMAIL_FROM: z.string().min(3),
  /** The mailto: of List-Unsubscribe (RFC 8058); default: unsubscribe@ the EMAIL_FROM domain. */
  EMAIL_UNSUBSCRIBE_ADDRESS: z.string().email().optional(),
  PLANT_ID_TIMEOUT_MS: ms,
  PLANTNET_TIMEOUT_MS: ms,
  TREFLE_TIMEOUT_MS: ms,
  OPENAI_TIMEOUT_MS: ms,
  /** Synchronous identify/: how long to wait for the second provider once one has answered (0 = not at all). */
  IDENTIFY_SECOND_PROVIDER_GRACE_MS: z.coerce.number().int().min(0).optional().default(2500),
  PLANT_ID_CACHE_TTL_S: z.coerce.number().int().min(60), // KV's minimum expirationTtl
  PLANTNET_CACHE_TTL_S: z.coerce.number().int().min(60),
  ALLOW_ANONYMOUS_IDENTIFY: flag,
  EDGE_RATE_LIMIT_ENABLED: flag.optional().default(true),
  CORS_ORIGINS: z.string().transform((v) =>
    v
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean),
  ),
  FRONTEND_URL: url,
  PUBLIC_API_URL: publicOrigin,
  JWT_ISSUER: z.string().min(1),
  JWT_AUDIENCE: z.string().min(1),
  JWT_ACCESS_TTL_S: z.coerce.number().int().positive(),
  JWT_REFRESH_TTL_S: z.coerce.number().int().positive(),
  COOKIE_SAMESITE: z.enum(["Lax", "Strict", "None"]),
  MAX_JSON_BODY_BYTES: z.coerce.number().int().positive(),
  MAX_UPLOAD_BODY_BYTES: z.coerce.number().int().positive(),
  SENTRY_DSN: z.string().optional().default(""),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).optional().default("info"),
  LOGIN_RATE_LIMIT: rate,
  REGISTER_RATE_LIMIT: rate,
  REFRESH_RATE_LIMIT: rate,
  IDENTIFY_RATE_LIMIT: rate,
  CARE_REGENERATE_RATE_LIMIT: rate,
  FORUM_POST_RATE_LIMIT: rate,
  /**
   * Refreshes of one session (default 30 an hour; a 15-minute access token needs 4): a refresh
   * token that verifies spends its session's budget, anything else REFRESH_RATE_LIMIT, per address.
   */
  REFRESH_SESSION_RATE_LIMIT: z.string().default("30/3600").pipe(rate),
  /**
   * Paid identifications (synchronous, queued, diagnosis, retries) per client address, whoever
   * is signed in (default 300 an hour, three accounts' IDENTIFY_RATE_LIMIT): each may cost a
   * Plant.id and a Pl@ntNet call, and accounts are cheap (REGISTER_RATE_LIMIT per address), so
   * per-account allowances alone grow with every account one address makes. IPv6 counts per /64.
   */
  IDENTIFY_ADDRESS_RATE_LIMIT: z.string().default("300/3600").pipe(rate),
  /** Plant photos stored per user, new plants and replaced photos alike (default 100 an hour). */
  PLANT_PHOTO_RATE_LIMIT: z.string().default("100/3600").pipe(rate),
  /** Avatars stored per user (default 10 an hour): each upload is a new photo kept while it is the avatar. */
  AVATAR_RATE_LIMIT: z.string().default("10/3600").pipe(rate),
  /**
   * Photo bytes each user may keep stored (default 1 GiB): the photos their requests, disease
   * requests, plants, forum attachments and avatar refer to, each counted once per user (a photo
   * shared with others counts for each who keeps it). An upload past it is refused (413
   * STORAGE_FULL) before anything is stored; deleting what refers to a photo frees it.
   */
  USER_STORAGE_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024 * 1024),
  /**
   * Garden calendar events created or changed per user (default 20 an hour): each is listed to
   * everyone (public ones), and a change of time or place notifies every attendee.
   */
  CALENDAR_EVENT_RATE_LIMIT: z.string().default("20/3600").pipe(rate),
  /**
   * Species lookups of names the catalogue lacks, per user (per address when anonymous; default 30
   * an hour): each may call Trefle on the deployment's quota and add a species, which purges the
   * cached catalogue for everyone. Names the catalogue has cost nothing.
   */
  SPECIES_LOOKUP_RATE_LIMIT: z.string().default("30/3600").pipe(rate),
  /** Blog comments per user (default 10 per 10 minutes). */
  BLOG_COMMENT_RATE_LIMIT: z.string().default("10/600").pipe(rate),
  /**
   * Account mail to one address (a password reset link, an email-change confirmation), per
   * address, whoever asks (default 3 an hour): many addresses asking cannot fill one inbox.
   * Sign-up confirmation links have as many per address, in a count of their own.
   */
  ACCOUNT_MAIL_RATE_LIMIT: z.string().default("3/3600").pipe(rate),
  /** Email-change requests per account (default 5 an hour); each mails two addresses. */
  EMAIL_CHANGE_RATE_LIMIT: z.string().default("5/3600").pipe(rate),
  /**
   * Account exports per user (default 5 an hour): each reads everything the account holds in one
   * heavy batch, so a script looping on it must not tie up the database.
   */
  ACCOUNT_EXPORT_RATE_LIMIT: z.string().default("5/3600").pipe(rate),
  /**
   * A forum search whose words are all shorter than three characters has no trigram to look up,
   * so its post bodies are tested one by one: only the latest this many posts are (default 5 000);
   * topic titles are always searched in full.
   */
  SEARCH_SHORT_WORD_POSTS: z.coerce.number().int().positive().default(5000),
  LOCKOUT_THRESHOLD: z.coerce.number().int().positive(),
  LOCKOUT_WINDOW_S: z.coerce.number().int().positive(),
  LOCKOUT_DURATION_S: z.coerce.number().int().positive(),
  PASSWORD_RESET_TTL_S: z.coerce.number().int().positive(),
  GOOGLE_CLIENT_ID: z.string().optional().default(""),
  GOOGLE_AUTH_URL: url,
  GOOGLE_TOKEN_URL: url,
  GOOGLE_JWKS_URL: url,
  GOOGLE_ISSUER: z.string().min(1),
  /** Firebase sign-in for the mobile app (API.md §5d): the project whose ID tokens are accepted; empty = off. */
  FIREBASE_PROJECT_ID: z.string().default(""),
  FIREBASE_JWKS_URL: url,
  GITHUB_CLIENT_ID: z.string().optional().default(""),
  GITHUB_AUTHORIZE_URL: url,
  GITHUB_TOKEN_URL: url,
  GITHUB_API_URL: url,
  GOOGLE_CLIENT_SECRET: optionalSecret,
  GITHUB_CLIENT_SECRET: optionalSecret,
  JWT_SECRET: optionalSecret,
  /**
   * Rotation: the secrets JWT_SECRET replaced, comma-separated, newest first. What they signed or
   * sealed (sessions, CSRF tokens, unsubscribe links, calendar-feed URLs, two-factor secrets and
   * recovery codes) is still accepted; nothing new is signed or sealed with them.
   */
  JWT_SECRET_PREVIOUS: z
    .string()
    .optional()
    .transform((v) =>
      (v ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  PLANT_ID_API_KEY: optionalSecret,
  PLANTNET_API_KEY: optionalSecret,
  TREFLE_API_KEY: optionalSecret,
  OPENAI_API_KEY: optionalSecret,
  EMAIL_API_KEY: optionalSecret,
  /** The provider's webhook signing secret (`whsec_…`); without it the webhook answers 503. */
  EMAIL_WEBHOOK_SECRET: z.string().optional(),
  /**
   * Web Push application server keys (RFC 8292), base64url: the uncompressed P-256 public key and
   * its 32-byte private scalar. Without both, push subscriptions answer 503 and nothing is pushed.
   */
  VAPID_PUBLIC_KEY: optionalSecret,
  VAPID_PRIVATE_KEY: optionalSecret,
  /**
   * Hosts push subscriptions may point at, comma-separated: exact names or `*.suffix`. The
   * default is the push services of Chrome/Edge/Android (FCM), Firefox (Mozilla autopush),
   * Safari (Apple) and Windows (WNS). Local runs also allow localhost and 127.0.0.1.
   */
  PUSH_SERVICE_HOSTS: z
    .string()
    .default("fcm.googleapis.com,android.googleapis.com,updates.push.services.mozilla.com,*.push.apple.com,*.notify.windows.com")
    .transform((v) =>
      v
        .split(",")
        .map((h) => h.trim())
        .filter(Boolean),
    )
    .refine((hosts) => hosts.length > 0, "name at least one push service host"),
  /** The contact push services see in the VAPID token (`mailto:` or `https:`). */
  VAPID_SUBJECT: z
    .string()
    .regex(/^(mailto:|https:)/, "must start with mailto: or https:")
    .default("mailto:push@plantcommunity.local"),
});

/** Every setting's name. */
export const CONFIG_NAMES = Object.keys(ConfigSchema.shape) as (keyof typeof ConfigSchema.shape)[];
