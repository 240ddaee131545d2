/**
 * The data model at a glance. Every id a client sees is a UUID (v7, so rows sort by creation);
 * times are ISO-8601 UTC strings; lists and objects that are read whole are JSON text.
 * Migrations in /migrations are generated from this file by drizzle-kit and reviewed by hand.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const now = sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`;

const timestamps = {
  createdAt: text("created_at").notNull().default(now),
  updatedAt: text("updated_at").notNull().default(now),
};

export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    username: text("username").notNull(),
    email: text("email").notNull(),
    passwordHash: text("password_hash"), // null for OAuth-only accounts
    firstName: text("first_name").notNull().default(""),
    lastName: text("last_name").notNull().default(""),
    bio: text("bio").notNull().default(""),
    location: text("location").notNull().default(""),
    website: text("website").notNull().default(""),
    gardeningExperience: text("gardening_experience").notNull().default("beginner"),
    profileVisibility: text("profile_visibility").notNull().default("public"),
    avatarKey: text("avatar_key"),
    role: text("role", { enum: ["user", "author", "moderator", "editor", "admin"] })
      .notNull()
      .default("user"),
    trustLevel: text("trust_level", { enum: ["new", "basic", "trusted", "veteran"] })
      .notNull()
      .default("new"),
    isActive: integer("is_active", { mode: "boolean" }).notNull().default(true),
    emailVerified: integer("email_verified", { mode: "boolean" }).notNull().default(false),
    /**
     * The password was set or confirmed by the holder of the account's address (migrations/0043),
     * and with it the account's other ways in: its address was confirmed from inside the account,
     * or a reset link set its password. A provider sign-in linked by that address keeps only a
     * proven password, and, on an account not proven, only the sign-ins that vouch for the address.
     */
    passwordProven: integer("password_proven", { mode: "boolean" }).notNull().default(false),
    plantsIdentified: integer("plants_identified").notNull().default(0),
    identificationsHelped: integer("identifications_helped").notNull().default(0),
    postCount: integer("post_count").notNull().default(0),
    dateJoined: text("date_joined").notNull().default(now),
    lastLogin: text("last_login"),
    /** Epoch ms; tokens issued before it (by their UUID v7 jti) are refused (password change, reset). */
    tokensValidAfter: integer("tokens_valid_after").notNull().default(0),
    /** Sent at most once per lockout period. */
    lockoutNotifiedAt: integer("lockout_notified_at"),
    /** An email change waiting for the new address to confirm; it claims nothing until then. */
    pendingEmail: text("pending_email"),
    /** When the owner deleted the account (migrations/0041): the row stays, anonymised; it cannot be reactivated. */
    deletedAt: text("deleted_at"),
    updatedAt: text("updated_at").notNull().default(now),
  },
  (t) => [
    // Usernames and emails are unique case-insensitively.
    uniqueIndex("users_username_lower_unique").on(sql`lower(${t.username})`),
    uniqueIndex("users_email_lower_unique").on(sql`lower(${t.email})`),
    // The five-minute sweep's accounts whose age is about to make their votes count
    // (services/community.ts recountAgedAccounts; migrations/0057). Its condition is BASIC_TRUST's.
    index("users_new_by_age_idx").on(t.dateJoined).where(sql`${t.trustLevel} = 'new' AND ${t.postCount} >= 5`),
  ],
);

/**
 * The usernames of deleted accounts, retired for good (migrations/0044; services/account-deletion.ts):
 * old posts and comments still say "@alice" and clients link the name to a profile, so nobody may
 * take it after her. Stored as the SHA-256 (hex) of the lower-cased name, so the table does not
 * keep the old name readable; a name is refused case-insensitively, as it is matched at sign-in.
 * No account id and no time: a row cannot be joined back to the anonymised account.
 */
export const retiredUsernames = sqliteTable("retired_usernames", {
  usernameSha256: text("username_sha256").primaryKey(),
});

export const species = sqliteTable(
  "species",
  {
    id: text("id").primaryKey(),
    scientificName: text("scientific_name").notNull(),
    commonNames: text("common_names", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    family: text("family").notNull().default(""),
    genus: text("genus").notNull().default(""),
    gbifId: integer("gbif_id"),
    trefleId: integer("trefle_id"),
    plantType: text("plant_type"),
    lightRequirements: text("light_requirements", {
      enum: ["full_sun", "partial_sun", "partial_shade", "full_shade"],
    }),
    waterRequirements: text("water_requirements", { enum: ["low", "moderate", "high"] }),
    hardinessZoneMin: integer("hardiness_zone_min"),
    hardinessZoneMax: integer("hardiness_zone_max"),
    soilPhMin: real("soil_ph_min"),
    soilPhMax: real("soil_ph_max"),
    matureHeightMinCm: integer("mature_height_min_cm"),
    matureHeightMaxCm: integer("mature_height_max_cm"),
    bloomTime: text("bloom_time"),
    flowerColor: text("flower_color"),
    description: text("description").notNull().default(""),
    imageUrl: text("image_url"),
    identificationCount: integer("identification_count").notNull().default(0),
    /** Requests whose community consensus is this species (issue 11), recounted on every change. */
    confirmedCount: integer("confirmed_count").notNull().default(0),
    isVerified: integer("is_verified", { mode: "boolean" }).notNull().default(false),
    source: text("source").notNull().default("seed"),
    ...timestamps,
  },
  (t) => [
    // Scientific names are unique however they are capitalised.
    uniqueIndex("species_scientific_name_unique").on(sql`lower(${t.scientificName})`),
    // The seed system's idx_species_popularity: catalogue order is popularity, then name.
    index("species_popularity_idx").on(t.identificationCount, t.scientificName),
    index("species_family_idx").on(t.family),
    // A short query's family prefix is an index range (migration 0026).
    index("species_family_lower_idx").on(sql`lower(${t.family})`),
  ],
);

/**
 * Each common name of a species as a row, lower-cased, so completions and short queries read an
 * index range (migration 0026). Written only by triggers on `species`; never by the application.
 */
export const speciesCommonNames = sqliteTable(
  "species_common_names",
  {
    speciesId: text("species_id").notNull(),
    position: integer("position").notNull(),
    name: text("name").notNull(),
    nameLower: text("name_lower").notNull(),
  },
  (t) => [primaryKey({ columns: [t.speciesId, t.position] }), index("species_common_names_prefix_idx").on(t.nameLower)],
);

export const identificationRequests = sqliteTable(
  "identification_requests",
  {
    id: text("id").primaryKey(),
    userId: text("user_id").references(() => users.id, { onDelete: "cascade" }),
    status: text("status", {
      enum: ["pending", "processing", "identified", "needs_help", "failed"],
    })
      .notNull()
      .default("pending"),
    /** SHA-256 hex digests of the uploaded images, in upload order (R2 keys derive from them). */
    imageHashes: text("image_hashes", { mode: "json" }).$type<string[]>().notNull(),
    organs: text("organs", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    latitude: real("latitude"),
    longitude: real("longitude"),
    location: text("location").notNull().default(""),
    description: text("description").notNull().default(""),
    plantSize: text("plant_size").notNull().default(""),
    habitat: text("habitat").notNull().default(""),
    /** The language (ISO 639-1) its job asks the engines in (migration 0049); earlier rows are English. */
    language: text("language").notNull().default("en"),
    isSharedWithCommunity: integer("is_shared_with_community", { mode: "boolean" }).notNull().default(false),
    sharedAt: text("shared_at"),
    /** The result the community confirmed (§5c consensus), recomputed on every vote; null: none. */
    communityResultId: text("community_result_id"),
    communityConfirmedAt: text("community_confirmed_at"),
    attempts: integer("attempts").notNull().default(0),
    /** Queue lease (migration 0012): when the pending message is deliverable / the claim runs out. */
    leaseExpiresAt: text("lease_expires_at"),
    /** Times the cron sweep re-queued it after its message was lost (bounded). */
    requeueCount: integer("requeue_count").notNull().default(0),
    /** Times its owner retried it (migration 0034): its notifications are once per run. */
    run: integer("run").notNull().default(0),
    /** The queue delivery whose claim holds it (migration 0034): only that one releases it. */
    claimToken: text("claim_token"),
    errorMessage: text("error_message"),
    /** Plant.id's health assessment of the photo (disease hints), when it gave one. */
    health: text("health", { mode: "json" }).$type<Record<string, unknown>>(),
    processedAt: text("processed_at"),
    ...timestamps,
  },
  (t) => [
    // The seed system's idx_request_user_created: a user's history, newest first.
    index("requests_user_created_idx").on(t.userId, t.createdAt),
    index("requests_status_idx").on(t.status),
  ],
);

export const identificationResults = sqliteTable(
  "identification_results",
  {
    id: text("id").primaryKey(),
    requestId: text("request_id")
      .notNull()
      .references(() => identificationRequests.id, { onDelete: "cascade" }),
    speciesId: text("species_id").references(() => species.id, { onDelete: "set null" }),
    scientificName: text("scientific_name").notNull(),
    plantName: text("plant_name").notNull().default(""),
    commonNames: text("common_names", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    family: text("family").notNull().default(""),
    genus: text("genus").notNull().default(""),
    gbifId: integer("gbif_id"),
    confidenceScore: real("confidence_score").notNull(),
    identificationSource: text("identification_source", {
      enum: ["ai_plant_id", "ai_plantnet", "ai_combined", "community", "expert", "user_manual"],
    }).notNull(),
    rank: integer("rank").notNull(),
    isPrimary: integer("is_primary", { mode: "boolean" }).notNull().default(false),
    isAccepted: integer("is_accepted", { mode: "boolean" }).notNull().default(false),
    upvotes: integer("upvotes").notNull().default(0),
    downvotes: integer("downvotes").notNull().default(0),
    /** Provider details kept for display: similar images, per-provider scores, care hints. */
    details: text("details", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    /** A community proposal's author (source `community`). */
    proposedBy: text("proposed_by").references(() => users.id, { onDelete: "set null" }),
    comment: text("comment").notNull().default(""),
    /** Hidden by a moderator: not shown to others and not counted. */
    isHidden: integer("is_hidden", { mode: "boolean" }).notNull().default(false),
    /** When its proposer withdrew a community proposal: still a candidate, their support no longer counted (migrations/0062). */
    withdrawnAt: text("withdrawn_at"),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [
    // The seed system's idx_result_confidence.
    index("results_confidence_idx").on(t.confidenceScore),
    // Idempotent job writes: one row per species per request, however often a job re-runs.
    uniqueIndex("results_request_species_unique").on(t.requestId, sql`lower(${t.scientificName})`),
    index("results_request_rank_idx").on(t.requestId, t.rank),
    // An account's proposals, for the recount when whether its votes count changes (migrations/0057).
    index("results_proposed_by_idx").on(t.proposedBy).where(sql`${t.proposedBy} IS NOT NULL`),
  ],
);

export const votes = sqliteTable(
  "votes",
  {
    id: text("id").primaryKey(),
    resultId: text("result_id")
      .notNull()
      .references(() => identificationResults.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    voteType: text("vote_type", { enum: ["upvote", "downvote"] }).notNull(),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [
    uniqueIndex("votes_result_user_unique").on(t.resultId, t.userId),
    // An account's votes, for the recount when whether they count changes (migrations/0057).
    index("votes_user_idx").on(t.userId),
  ],
);

export const collections = sqliteTable(
  "collections",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /**
     * textKey(name), written with every name (db/collection-names.ts). None on rows from before
     * migrations/0060 whose name is not plain ASCII until the owner's next create or rename keys
     * them, nor on the younger of two names made before the rule that clash under it.
     */
    nameKey: text("name_key"),
    description: text("description").notNull().default(""),
    isPublic: integer("is_public", { mode: "boolean" }).notNull().default(false),
    isDefault: integer("is_default", { mode: "boolean" }).notNull().default(false),
    ...timestamps,
  },
  (t) => [
    uniqueIndex("collections_user_name_unique").on(t.userId, sql`lower(${t.name})`),
    // One name per user under Unicode folding, whatever two writes at once checked (migrations/0060).
    uniqueIndex("collections_user_name_key_unique").on(t.userId, t.nameKey).where(sql`${t.nameKey} IS NOT NULL`),
  ],
);

export const userPlants = sqliteTable(
  "user_plants",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    collectionId: text("collection_id")
      .notNull()
      .references(() => collections.id, { onDelete: "cascade" }),
    speciesId: text("species_id").references(() => species.id, { onDelete: "set null" }),
    resultId: text("result_id").references(() => identificationResults.id, { onDelete: "set null" }),
    nickname: text("nickname").notNull().default(""),
    acquisitionDate: text("acquisition_date"),
    locationInHome: text("location_in_home").notNull().default(""),
    notes: text("notes").notNull().default(""),
    isAlive: integer("is_alive", { mode: "boolean" }).notNull().default(true),
    imageKey: text("image_key"),
    careInstructionsJson: text("care_instructions_json", { mode: "json" }).$type<Record<string, unknown>>(),
    ...timestamps,
  },
  (t) => [
    index("user_plants_user_idx").on(t.userId, t.createdAt),
    // A collection's plants, newest first (owner filter and the public collection page).
    index("user_plants_collection_created_idx").on(t.collectionId, t.createdAt),
    // add_to_collection is idempotent per (collection, result).
    uniqueIndex("user_plants_collection_result_unique").on(t.collectionId, t.resultId),
  ],
);

// ---------------------------------------------------------------------------------------------
// Accounts and sessions

/** Every refresh token ever issued; rotation links them into families (theft detection). */
export const refreshTokens = sqliteTable(
  "refresh_tokens",
  {
    jti: text("jti").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    familyId: text("family_id").notNull(),
    expiresAt: integer("expires_at").notNull(), // epoch seconds, as in the JWT
    revokedAt: integer("revoked_at"),
    replacedBy: text("replaced_by"),
    /** The access jti issued with `replacedBy`, so a refresh inside the reuse window can re-send the same pair. */
    replacedAccessJti: text("replaced_access_jti"),
    createdAt: text("created_at").notNull().default(now),
    /**
     * What the session's owner recognises it by (auth/sessions/), set at sign-in and carried to
     * each rotated token: a short label derived from the User-Agent (never the header itself)…
     */
    client: text("client"),
    /** …and the country it signed in from (ISO 3166-1 alpha-2), never the address. */
    country: text("country"),
  },
  (t) => [index("refresh_tokens_family_idx").on(t.familyId), index("refresh_tokens_user_idx").on(t.userId)],
);

/** Revoked access-token jtis, remembered until the token would have expired anyway. */
export const revokedTokens = sqliteTable(
  "revoked_tokens",
  {
    jti: text("jti").primaryKey(),
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [index("revoked_tokens_expires_idx").on(t.expiresAt)],
);

/**
 * Sessions (refresh-token families) ended by sign-out or theft detection, remembered until
 * their last access token would have expired, so those access tokens stop working at once.
 */
export const revokedSessions = sqliteTable(
  "revoked_sessions",
  {
    familyId: text("family_id").primaryKey(),
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [index("revoked_sessions_expires_idx").on(t.expiresAt)],
);

/** A requested email change: the emailed link (SHA-256 stored) must come back before it applies. */
export const emailChangeTokens = sqliteTable(
  "email_change_tokens",
  {
    tokenHash: text("token_hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    newEmail: text("new_email").notNull(),
    expiresAt: integer("expires_at").notNull(),
    usedAt: integer("used_at"),
    createdAt: text("created_at").notNull().default(now),
    /** The session (refresh family) that asked for the change: its end cancels it (migration 0055). Null: a verification link, or older. */
    sessionId: text("session_id"),
  },
  (t) => [index("email_change_user_idx").on(t.userId)],
);

export const passwordResetTokens = sqliteTable(
  "password_reset_tokens",
  {
    tokenHash: text("token_hash").primaryKey(), // SHA-256 of the emailed token; the token itself is never stored
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    expiresAt: integer("expires_at").notNull(),
    usedAt: integer("used_at"),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [index("password_reset_user_idx").on(t.userId)],
);

/** Single-use, 60-second tickets that let a browser open a WebSocket without a token in the URL. */
export const wsTickets = sqliteTable(
  "ws_tickets",
  {
    ticketHash: text("ticket_hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** The session (refresh family) that asked for it; its sign-out closes the socket. */
    sessionId: text("session_id"),
    expiresAt: integer("expires_at").notNull(),
    usedAt: integer("used_at"),
  },
  // What deleting the user walks (migration 0054).
  (t) => [index("ws_tickets_user_idx").on(t.userId)],
);

/**
 * Two-factor sign-in with an authenticator app (migrations/0046; services/two-factor.ts). `secret`
 * is the TOTP secret encrypted (AES-GCM, key derived from JWT_SECRET), `v2.<key id>.<iv>.<sealed>`
 * naming the secret that sealed it (`v1.<iv>.<sealed>` from before key ids); `enabled_at` null
 * while the setup waits for its first code; `last_step` the last time step accepted (each code
 * once); `recovery_codes` a JSON array of the unused recovery codes' HMACs, `<key id>.<hex>` (bare
 * hex from before key ids).
 */
export const twoFactor = sqliteTable("two_factor", {
  userId: text("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  secret: text("secret").notNull(),
  enabledAt: text("enabled_at"),
  lastStep: integer("last_step"),
  recoveryCodes: text("recovery_codes").notNull().default("[]"),
  createdAt: text("created_at").notNull().default(now),
  /** A password step's new hash of an outdated one, for `2fa/verify/` to write (migrations/0047). */
  rehash: text("rehash"),
  /** The fingerprint of the stored hash `rehash` replaces: written only while that hash is still the account's. */
  rehashOf: text("rehash_of"),
});

/**
 * Two-factor recovery without the authenticator or the recovery codes (migrations/0052,
 * services/two-factor-reset.ts): an emailed start link, a 72-hour wait, a cancel that always wins.
 */
export const twoFactorResets = sqliteTable(
  "two_factor_resets",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** SHA-256 of the emailed start link's token; the token itself is never stored. */
    linkHash: text("link_hash").notNull(),
    /** Unix seconds. */
    linkExpiresAt: integer("link_expires_at").notNull(),
    startedAt: text("started_at"),
    completesAfter: text("completes_after"),
    /** SHA-256 of the emailed cancel link's token. */
    cancelHash: text("cancel_hash"),
    cancelledAt: text("cancelled_at"),
    completedAt: text("completed_at"),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [
    uniqueIndex("two_factor_resets_link_hash_unique").on(t.linkHash),
    uniqueIndex("two_factor_resets_cancel_hash_unique").on(t.cancelHash),
    uniqueIndex("two_factor_resets_one_open")
      .on(t.userId)
      .where(sql`${t.startedAt} IS NOT NULL AND ${t.cancelledAt} IS NULL AND ${t.completedAt} IS NULL`),
    index("two_factor_resets_user_idx").on(t.userId),
  ],
);

/** OAuth `state` + PKCE verifier between /login and /callback (single use, 10 minutes). */
export const oauthStates = sqliteTable("oauth_states", {
  stateHash: text("state_hash").primaryKey(),
  provider: text("provider", { enum: ["google", "github"] }).notNull(),
  codeVerifier: text("code_verifier").notNull(),
  nonce: text("nonce").notNull(),
  expiresAt: integer("expires_at").notNull(),
  usedAt: integer("used_at"),
});

export const oauthAccounts = sqliteTable(
  "oauth_accounts",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    provider: text("provider", { enum: ["google", "github", "firebase"] }).notNull(),
    providerUserId: text("provider_user_id").notNull(),
    email: text("email").notNull().default(""),
    createdAt: text("created_at").notNull().default(now),
    /** Whether the provider vouched for `email` when the link was made (or since). */
    emailVerified: integer("email_verified", { mode: "boolean" }).notNull().default(true),
  },
  (t) => [
    uniqueIndex("oauth_accounts_provider_user_unique").on(t.provider, t.providerUserId),
    index("oauth_accounts_user_idx").on(t.userId),
  ],
);

// ---------------------------------------------------------------------------------------------
// Care

/** AI-written care guides, one per species and language (regenerated on demand, rate limited). */
export const careGuides = sqliteTable(
  "care_guides",
  {
    id: text("id").primaryKey(),
    speciesId: text("species_id")
      .notNull()
      .references(() => species.id, { onDelete: "cascade" }),
    language: text("language").notNull(),
    content: text("content", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    model: text("model").notNull(),
    ...timestamps,
  },
  (t) => [uniqueIndex("care_guides_species_language_unique").on(t.speciesId, t.language)],
);

/**
 * Care cards a user saved for later (API.md §5 "Saved care cards"): a copy of the instructions
 * as they were shown, so the card survives the species or the guide changing. One card per
 * scientific name per user, however it is capitalised.
 */
export const savedCareInstructions = sqliteTable(
  "saved_care_instructions",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    scientificName: text("scientific_name").notNull(),
    commonName: text("common_name").notNull().default(""),
    careInstructions: text("care_instructions", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    isFavorite: integer("is_favorite", { mode: "boolean" }).notNull().default(false),
    personalNotes: text("personal_notes").notNull().default(""),
    ...timestamps,
  },
  (t) => [
    uniqueIndex("saved_care_user_name_unique").on(t.userId, sql`lower(${t.scientificName})`),
    index("saved_care_user_created_idx").on(t.userId, t.createdAt),
  ],
);

// ---------------------------------------------------------------------------------------------
// Plant health (API.md §4 disease requests)

/**
 * A photo-based health diagnosis, processed by the same queue as identifications (job type
 * `diagnose`) with Plant.id's `/health_assessment`. Same status machine as identification
 * requests (API.md §2.2): `identified` = a diagnosis was made (the plant looks healthy, or the
 * best suggestion is at least 0.5 likely).
 */
export const diseaseRequests = sqliteTable(
  "disease_requests",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    status: text("status", {
      enum: ["pending", "processing", "identified", "needs_help", "failed"],
    })
      .notNull()
      .default("pending"),
    /** "<sha256>.<ext>" of each photo in upload order, as identification requests store them. */
    imageHashes: text("image_hashes", { mode: "json" }).$type<string[]>().notNull(),
    symptomsDescription: text("symptoms_description").notNull(),
    plantCondition: text("plant_condition", { enum: ["mild", "moderate", "severe", "dying"] }),
    location: text("location").notNull().default(""),
    /** The language (ISO 639-1) its job asks Plant.id in (migration 0049); earlier rows are English. */
    language: text("language").notNull().default("en"),
    /** Plant.id's verdicts, null until the assessment is stored. */
    isPlant: integer("is_plant", { mode: "boolean" }),
    isHealthy: integer("is_healthy", { mode: "boolean" }),
    isHealthyProbability: real("is_healthy_probability"),
    attempts: integer("attempts").notNull().default(0),
    /** Queue lease (migration 0012): when the pending message is deliverable / the claim runs out. */
    leaseExpiresAt: text("lease_expires_at"),
    /** Times the cron sweep re-queued it after its message was lost (bounded). */
    requeueCount: integer("requeue_count").notNull().default(0),
    /** Times its owner retried it (migration 0034): its notifications are once per run. */
    run: integer("run").notNull().default(0),
    /** The queue delivery whose claim holds it (migration 0034): only that one releases it. */
    claimToken: text("claim_token"),
    errorMessage: text("error_message"),
    processedAt: text("processed_at"),
    ...timestamps,
  },
  (t) => [
    // A user's diagnoses, newest first.
    index("disease_requests_user_created_idx").on(t.userId, t.createdAt),
    index("disease_requests_status_idx").on(t.status),
  ],
);

/** Plant.id's disease suggestions for one diagnosis, one row per disease name. */
export const diseaseResults = sqliteTable(
  "disease_results",
  {
    id: text("id").primaryKey(),
    requestId: text("request_id")
      .notNull()
      .references(() => diseaseRequests.id, { onDelete: "cascade" }),
    /** Plant.id's 16-hex entity id of the disease (stable across assessments). */
    entityId: text("entity_id"),
    name: text("name").notNull(),
    commonNames: text("common_names", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    probability: real("probability").notNull(),
    description: text("description").notNull().default(""),
    /** `{biological: [], chemical: [], prevention: []}` as Plant.id splits it. */
    treatment: text("treatment", { mode: "json" }).$type<Record<string, string[]>>().notNull().default(sql`'{}'`),
    /** From general to specific, e.g. ["Fungi", "Ascomycota", "Erysiphales"]. */
    classification: text("classification", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** Derived from the classification, for the disease database's `type` filter. */
    diseaseType: text("disease_type", {
      enum: ["fungal", "bacterial", "viral", "oomycete", "pest", "abiotic", "other"],
    })
      .notNull()
      .default("other"),
    cause: text("cause"),
    url: text("url"),
    similarImages: text("similar_images", { mode: "json" }).$type<Record<string, unknown>[]>().notNull().default(sql`'[]'`),
    rank: integer("rank").notNull(),
    /** The owner's confirmed diagnosis (at most one per request); feeds the disease database. */
    isConfirmed: integer("is_confirmed", { mode: "boolean" }).notNull().default(false),
    confirmedAt: text("confirmed_at"),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [
    // Idempotent job writes: a re-delivered job upserts, never duplicates.
    uniqueIndex("disease_results_request_name_unique").on(t.requestId, sql`lower(${t.name})`),
    uniqueIndex("disease_results_one_confirmed_per_request").on(t.requestId).where(sql`${t.isConfirmed} = 1`),
    index("disease_results_confirmed_idx").on(t.isConfirmed, t.diseaseType),
  ],
);

// ---------------------------------------------------------------------------------------------
// Care reminders and notifications (API.md §5)

/**
 * A recurring care task for one of the user's plants. `next_due_at` is the one occurrence that
 * matters: actions and the cron move it forward. `anchor_day` is the day of the month a monthly
 * series is pinned to, so Jan 31 → Feb 28 → Mar 31 does not drift to the 28th.
 */
export const careReminders = sqliteTable(
  "care_reminders",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    plantId: text("plant_id")
      .notNull()
      .references(() => userPlants.id, { onDelete: "cascade" }),
    reminderType: text("reminder_type", { enum: ["water", "fertilize", "prune", "repot", "mist", "custom"] }).notNull(),
    frequency: text("frequency", { enum: ["daily", "weekly", "biweekly", "monthly", "custom"] }).notNull(),
    /** Only for `custom` frequency (1..365). */
    customIntervalDays: integer("custom_interval_days"),
    title: text("title").notNull(),
    nextDueAt: text("next_due_at").notNull(),
    anchorDay: integer("anchor_day").notNull(),
    isActive: integer("is_active", { mode: "boolean" }).notNull().default(true),
    streak: integer("streak").notNull().default(0),
    lastCompletedAt: text("last_completed_at"),
    /** The `next_due_at` the cron last delivered a notification for. */
    notifiedDueAt: text("notified_due_at"),
    ...timestamps,
    /**
     * The local time of day (ms after midnight, owner's clock) the schedule repeats at, which a
     * due time moved on by a skipped hour no longer shows (migration 0059). NULL on older rows:
     * the due time's own.
     */
    localTimeMs: integer("local_time_ms"),
  },
  (t) => [
    index("care_reminders_user_due_idx").on(t.userId, t.nextDueAt),
    index("care_reminders_plant_idx").on(t.plantId),
    // The cron's work list: active reminders whose current occurrence is not yet delivered.
    index("care_reminders_pending_idx").on(t.nextDueAt).where(sql`${t.isActive} = 1 AND ${t.notifiedDueAt} IS NOT ${t.nextDueAt}`),
  ],
);

/**
 * In-app notifications. `dedupe_key` makes delivery idempotent: a care reminder's occurrence is
 * `care_reminder:<reminder id>:<due at>`, so a doubled or overlapping cron run inserts nothing new.
 */
export const notifications = sqliteTable(
  "notifications",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    type: text("type", { enum: ["care_reminder", "forum_reply"] }).notNull(),
    title: text("title").notNull(),
    body: text("body").notNull().default(""),
    data: text("data", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    dedupeKey: text("dedupe_key"),
    /** False: the user turned this type off in-app; the row only carries the event to email and push. */
    inApp: integer("in_app", { mode: "boolean" }).notNull().default(true),
    isRead: integer("is_read", { mode: "boolean" }).notNull().default(false),
    readAt: text("read_at"),
    createdAt: text("created_at").notNull().default(now),
    /** Set when the forum post it quoted was deleted: the row stays, blank, for the mention cap (services/notification-delivery.ts). */
    withdrawnAt: text("withdrawn_at"),
  },
  (t) => [
    uniqueIndex("notifications_dedupe_key_unique").on(t.dedupeKey),
    index("notifications_user_created_idx").on(t.userId, t.createdAt),
    index("notifications_user_unread_idx").on(t.userId).where(sql`${t.isRead} = 0`),
    // The housekeeping's retention sweep (services/notifications.ts purgeOldNotifications).
    index("notifications_created_idx").on(t.createdAt),
  ],
);

// ---------------------------------------------------------------------------------------------
// Forum (API.md §5)

/** Forum sections; seeded by migration 0008 so every environment has the same set. */
export const forumCategories = sqliteTable(
  "forum_categories",
  {
    id: text("id").primaryKey(),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    position: integer("position").notNull().default(0),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [uniqueIndex("forum_categories_slug_unique").on(t.slug)],
);

/**
 * A thread. Its opening text is its first post (`forum_posts.is_first = 1`). `reply_count` and
 * `last_activity_at` are recomputed from the posts in the same batch as every post write.
 * `solution_post_id` has no foreign key (it would make the two tables reference each other);
 * the service clears it when that post is soft-deleted.
 */
export const forumTopics = sqliteTable(
  "forum_topics",
  {
    id: text("id").primaryKey(),
    categoryId: text("category_id")
      .notNull()
      .references(() => forumCategories.id, { onDelete: "cascade" }),
    authorId: text("author_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    title: text("title").notNull(),
    isLocked: integer("is_locked", { mode: "boolean" }).notNull().default(false),
    isPinned: integer("is_pinned", { mode: "boolean" }).notNull().default(false),
    replyCount: integer("reply_count").notNull().default(0),
    lastActivityAt: text("last_activity_at").notNull().default(now),
    solutionPostId: text("solution_post_id"),
    // When a moderator last changed the title of a topic that is not theirs: from then on its
    // author may no longer change it (migration 0058).
    titleModeratorEditedAt: text("title_moderator_edited_at"),
    ...timestamps,
  },
  (t) => [
    index("forum_topics_category_order_idx").on(t.categoryId, t.isPinned, t.lastActivityAt),
    // A user's rows in the account export's order; also what deleting the user walks (migration 0054).
    index("forum_topics_author_created_idx").on(t.authorId, t.createdAt, t.id),
    // Title completions are an index range (migration 0026).
    index("forum_topics_title_lower_idx").on(sql`lower(${t.title})`),
  ],
);

/** A post's `body` is stored already sanitised (src/lib/sanitise.ts); deleted posts keep their row. */
export const forumPosts = sqliteTable(
  "forum_posts",
  {
    id: text("id").primaryKey(),
    topicId: text("topic_id")
      .notNull()
      .references(() => forumTopics.id, { onDelete: "cascade" }),
    authorId: text("author_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    body: text("body").notNull(),
    isFirst: integer("is_first", { mode: "boolean" }).notNull().default(false),
    isDeleted: integer("is_deleted", { mode: "boolean" }).notNull().default(false),
    deletedAt: text("deleted_at"),
    editedAt: text("edited_at"),
    // When a moderator last edited a post that is not theirs: from then on its author may no
    // longer edit it (migration 0058).
    moderatorEditedAt: text("moderator_edited_at"),
    ...timestamps,
  },
  (t) => [
    index("forum_posts_topic_created_idx").on(t.topicId, t.createdAt),
    // A user's posts oldest first: the account export's pages (migration 0053).
    index("forum_posts_author_created_idx").on(t.authorId, t.createdAt, t.id),
  ],
);

/** One reaction per (post, user, type): the unique index makes concurrent toggles safe. */
export const forumReactions = sqliteTable(
  "forum_reactions",
  {
    postId: text("post_id")
      .notNull()
      .references(() => forumPosts.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    type: text("type", { enum: ["like", "love", "helpful", "thanks"] }).notNull(),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [
    uniqueIndex("forum_reactions_post_user_type_unique").on(t.postId, t.userId, t.type),
    // A user's rows in the account export's order; also what deleting the user walks (migration 0054).
    index("forum_reactions_user_created_idx").on(t.userId, t.createdAt, t.postId, t.type),
  ],
);

/**
 * Photos attached to a post (API.md §5: at most 6, trust level basic and up), in upload order.
 * `image` is "<sha256>.<ext>" like identification requests' `image_hashes`: the R2 object
 * `images/<image>` is content-addressed and shared, and the photo store (services/photos.ts) keeps it while any
 * attachment refers to it. A soft-deleted post keeps its rows but shows none.
 */
export const forumAttachments = sqliteTable(
  "forum_attachments",
  {
    postId: text("post_id")
      .notNull()
      .references(() => forumPosts.id, { onDelete: "cascade" }),
    position: integer("position").notNull(),
    image: text("image").notNull(),
    width: integer("width").notNull(),
    height: integer("height").notNull(),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [uniqueIndex("forum_attachments_post_position_unique").on(t.postId, t.position), index("forum_attachments_image_idx").on(t.image)],
);

export const forumSubscriptions = sqliteTable(
  "forum_subscriptions",
  {
    topicId: text("topic_id")
      .notNull()
      .references(() => forumTopics.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [uniqueIndex("forum_subscriptions_topic_user_unique").on(t.topicId, t.userId), index("forum_subscriptions_user_idx").on(t.userId)],
);

/** Reports for moderation: one per (post, reporter). */
export const forumReports = sqliteTable(
  "forum_reports",
  {
    id: text("id").primaryKey(),
    postId: text("post_id")
      .notNull()
      .references(() => forumPosts.id, { onDelete: "cascade" }),
    reporterId: text("reporter_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    reason: text("reason").notNull(),
    status: text("status", { enum: ["open", "resolved", "dismissed"] })
      .notNull()
      .default("open"),
    resolvedBy: text("resolved_by").references(() => users.id, { onDelete: "set null" }),
    resolvedAt: text("resolved_at"),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [
    uniqueIndex("forum_reports_post_reporter_unique").on(t.postId, t.reporterId),
    // A user's rows in the account export's order; also what deleting the user walks (migration 0054).
    index("forum_reports_reporter_created_idx").on(t.reporterId, t.createdAt, t.id),
    // The reports a moderator resolved: what deleting that moderator walks (migration 0054).
    index("forum_reports_resolved_by_idx").on(t.resolvedBy).where(sql`${t.resolvedBy} IS NOT NULL`),
    index("forum_reports_status_created_idx").on(t.status, t.createdAt),
  ],
);

// ---------------------------------------------------------------------------------------------
// Garden calendar (API.md §5)

/**
 * A community event. `starts_at`/`ends_at` are ISO-8601 UTC strings, so string comparison is
 * time order (the feed's overlap query relies on it). `capacity` limits `going` RSVPs only;
 * null means unlimited.
 */
export const calendarEvents = sqliteTable(
  "calendar_events",
  {
    id: text("id").primaryKey(),
    organizerId: text("organizer_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    title: text("title").notNull(),
    description: text("description").notNull().default(""),
    startsAt: text("starts_at").notNull(),
    endsAt: text("ends_at").notNull(),
    location: text("location").notNull().default(""),
    privacy: text("privacy", { enum: ["public", "followers", "private"] })
      .notNull()
      .default("public"),
    capacity: integer("capacity"),
    ...timestamps,
  },
  (t) => [
    index("calendar_events_starts_idx").on(t.startsAt),
    index("calendar_events_organizer_starts_idx").on(t.organizerId, t.startsAt),
    // The organiser's cap on events not yet ended (migrations 0036, 0040).
    index("calendar_events_organizer_ends_idx").on(t.organizerId, t.endsAt),
  ],
);

/** One RSVP per (event, user): the unique index is what the conditional upsert conflicts on. */
export const calendarRsvps = sqliteTable(
  "calendar_rsvps",
  {
    eventId: text("event_id")
      .notNull()
      .references(() => calendarEvents.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    status: text("status", { enum: ["going", "maybe", "not_going"] }).notNull(),
    ...timestamps,
  },
  (t) => [
    uniqueIndex("calendar_rsvps_event_user_unique").on(t.eventId, t.userId),
    index("calendar_rsvps_event_status_idx").on(t.eventId, t.status),
    index("calendar_rsvps_user_idx").on(t.userId),
  ],
);

/** Seasonal gardening tasks per month and hemisphere; seeded by migration 0009. */
export const seasonalTaskTemplates = sqliteTable(
  "seasonal_task_templates",
  {
    id: text("id").primaryKey(),
    month: integer("month").notNull(),
    hemisphere: text("hemisphere", { enum: ["north", "south"] }).notNull(),
    title: text("title").notNull(),
    description: text("description").notNull().default(""),
    taskType: text("task_type", { enum: ["sow", "plant", "prune", "fertilize", "water", "harvest", "protect", "maintenance"] }).notNull(),
    position: integer("position").notNull().default(0),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [index("seasonal_task_templates_hemisphere_month_idx").on(t.hemisphere, t.month, t.position)],
);

// ---------------------------------------------------------------------------------------------
// Blog (API.md §5 Blog, §5a)

/** Blog categories (a post may have several). */
export const blogCategories = sqliteTable(
  "blog_categories",
  {
    id: text("id").primaryKey(),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [uniqueIndex("blog_categories_slug_unique").on(t.slug)],
);

/** An ordered series of posts (`blog_posts.series_order`). `cover_image` is a photo reference. */
export const blogSeries = sqliteTable(
  "blog_series",
  {
    id: text("id").primaryKey(),
    slug: text("slug").notNull(),
    title: text("title").notNull(),
    description: text("description").notNull().default(""),
    coverImage: text("cover_image"),
    coverImageAlt: text("cover_image_alt").notNull().default(""),
    isCompleted: integer("is_completed", { mode: "boolean" }).notNull().default(false),
    ...timestamps,
  },
  (t) => [uniqueIndex("blog_series_slug_unique").on(t.slug)],
);

/**
 * The blog's own photos (its media library; migration 0029): a post's images and a series cover
 * must be one of these, so a writer cannot place (and an editor then publish) a stored photo
 * that only its owner may see. Blog writers may fetch them. A row leaves with its photo, when
 * nothing refers to that any more (services/photos.ts releasePhotos).
 */
export const blogImages = sqliteTable(
  "blog_images",
  {
    ref: text("ref").primaryKey(),
    uploadedBy: text("uploaded_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [
    // A user's rows in the account export's order; also what deleting the user walks (migration 0054).
    index("blog_images_uploader_created_idx").on(t.uploadedBy, t.createdAt, t.ref),
  ],
);

/**
 * The photo bytes charged to each user against USER_STORAGE_BYTES (migration 0061): one row per
 * photo the user's rows refer to, charged before the photo is stored (services/photos.ts
 * `chargeStorage`); a photo shared by several users is charged to each. `pendingSince` (seconds)
 * while the upload's rows are being written, null once they are.
 */
export const userPhotoBytes = sqliteTable(
  "user_photo_bytes",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    ref: text("ref").notNull(),
    bytes: integer("bytes").notNull(),
    pendingSince: integer("pending_since"),
  },
  (t) => [primaryKey({ columns: [t.userId, t.ref] })],
);

/** One content block as stored: `value` is already validated and sanitised per type. */
export interface StoredBlock {
  id: string;
  type: string;
  value: unknown;
}

/**
 * A post. `introduction` and the HTML inside `content_blocks` are stored sanitised; `excerpt`,
 * `reading_time` and `search_text` (the plain text the FTS index reads) are computed on every
 * save. Only `status = 'published'` rows are ever visible to readers; `scheduled_at` is when
 * the cron trigger publishes a post (cleared when it does). `revision` is the number of the
 * latest row in blog_revisions. `featured_image` is a photo reference (services/photos.ts).
 */
export const blogPosts = sqliteTable(
  "blog_posts",
  {
    id: text("id").primaryKey(),
    slug: text("slug").notNull(),
    title: text("title").notNull(),
    introduction: text("introduction").notNull().default(""),
    contentBlocks: text("content_blocks", { mode: "json" }).$type<StoredBlock[]>().notNull().default(sql`'[]'`),
    status: text("status", { enum: ["draft", "review", "published", "unpublished"] })
      .notNull()
      .default("draft"),
    authorId: text("author_id").references(() => users.id, { onDelete: "set null" }),
    featuredImage: text("featured_image"),
    featuredImageAlt: text("featured_image_alt").notNull().default(""),
    seriesId: text("series_id").references(() => blogSeries.id, { onDelete: "set null" }),
    seriesOrder: integer("series_order"),
    isFeatured: integer("is_featured", { mode: "boolean" }).notNull().default(false),
    readingTime: integer("reading_time").notNull().default(1),
    excerpt: text("excerpt").notNull().default(""),
    searchText: text("search_text").notNull().default(""),
    scheduledAt: text("scheduled_at"),
    firstPublishedAt: text("first_published_at"),
    lastPublishedAt: text("last_published_at"),
    viewCount: integer("view_count").notNull().default(0),
    commentCount: integer("comment_count").notNull().default(0),
    revision: integer("revision").notNull().default(0),
    ...timestamps,
  },
  (t) => [
    uniqueIndex("blog_posts_slug_unique").on(t.slug),
    index("blog_posts_status_published_idx").on(t.status, t.firstPublishedAt),
    // Title completions are an index range (migration 0026).
    index("blog_posts_title_lower_idx").on(sql`lower(${t.title})`),
    index("blog_posts_status_views_idx").on(t.status, t.viewCount),
    index("blog_posts_author_idx").on(t.authorId, t.updatedAt),
    index("blog_posts_series_idx").on(t.seriesId, t.seriesOrder),
    index("blog_posts_scheduled_idx").on(t.scheduledAt).where(sql`${t.scheduledAt} IS NOT NULL`),
  ],
);

export const blogPostCategories = sqliteTable(
  "blog_post_categories",
  {
    postId: text("post_id")
      .notNull()
      .references(() => blogPosts.id, { onDelete: "cascade" }),
    categoryId: text("category_id")
      .notNull()
      .references(() => blogCategories.id, { onDelete: "cascade" }),
  },
  (t) => [
    uniqueIndex("blog_post_categories_unique").on(t.postId, t.categoryId),
    index("blog_post_categories_category_idx").on(t.categoryId, t.postId),
  ],
);

/** Tags are lower-case slugs, kept per post. */
export const blogPostTags = sqliteTable(
  "blog_post_tags",
  {
    postId: text("post_id")
      .notNull()
      .references(() => blogPosts.id, { onDelete: "cascade" }),
    tag: text("tag").notNull(),
  },
  (t) => [uniqueIndex("blog_post_tags_unique").on(t.postId, t.tag), index("blog_post_tags_tag_idx").on(t.tag, t.postId)],
);

/** Every save of a post: the editable fields as they were after it (`snapshot`). */
export const blogRevisions = sqliteTable(
  "blog_revisions",
  {
    id: text("id").primaryKey(),
    postId: text("post_id")
      .notNull()
      .references(() => blogPosts.id, { onDelete: "cascade" }),
    number: integer("number").notNull(),
    authorId: text("author_id").references(() => users.id, { onDelete: "set null" }),
    snapshot: text("snapshot", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [
    uniqueIndex("blog_revisions_post_number_unique").on(t.postId, t.number),
    // A user's rows in the account export's order; also what deleting the user walks (migration 0054).
    index("blog_revisions_author_created_idx").on(t.authorId, t.createdAt, t.postId, t.number),
  ],
);

/** Exact views per post per UTC day: an UPSERT increment, never a read-modify-write. */
export const blogPostViews = sqliteTable(
  "blog_post_views",
  {
    postId: text("post_id")
      .notNull()
      .references(() => blogPosts.id, { onDelete: "cascade" }),
    day: text("day").notNull(),
    views: integer("views").notNull().default(0),
  },
  (t) => [uniqueIndex("blog_post_views_post_day_unique").on(t.postId, t.day), index("blog_post_views_day_idx").on(t.day, t.postId)],
);

/** Comments on published posts; `body` stored sanitised. `pending` ones await a moderator. */
export const blogComments = sqliteTable(
  "blog_comments",
  {
    id: text("id").primaryKey(),
    postId: text("post_id")
      .notNull()
      .references(() => blogPosts.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    parentId: text("parent_id"),
    body: text("body").notNull(),
    status: text("status", { enum: ["pending", "approved", "rejected"] })
      .notNull()
      .default("pending"),
    moderatedBy: text("moderated_by").references(() => users.id, { onDelete: "set null" }),
    moderatedAt: text("moderated_at"),
    ...timestamps,
  },
  (t) => [
    index("blog_comments_post_status_created_idx").on(t.postId, t.status, t.createdAt),
    index("blog_comments_status_created_idx").on(t.status, t.createdAt),
    index("blog_comments_user_created_idx").on(t.userId, t.createdAt),
    // The comments a moderator decided: what deleting that moderator walks (migration 0054).
    index("blog_comments_moderated_by_idx").on(t.moderatedBy).where(sql`${t.moderatedBy} IS NOT NULL`),
  ],
);

/** Reports on comments: one per (comment, reporter). */
export const blogCommentReports = sqliteTable(
  "blog_comment_reports",
  {
    id: text("id").primaryKey(),
    commentId: text("comment_id")
      .notNull()
      .references(() => blogComments.id, { onDelete: "cascade" }),
    reporterId: text("reporter_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    reason: text("reason").notNull(),
    status: text("status", { enum: ["open", "resolved", "dismissed"] })
      .notNull()
      .default("open"),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [
    uniqueIndex("blog_comment_reports_comment_reporter_unique").on(t.commentId, t.reporterId),
    // A user's rows in the account export's order; also what deleting the user walks (migration 0054).
    index("blog_comment_reports_reporter_created_idx").on(t.reporterId, t.createdAt, t.id),
    index("blog_comment_reports_status_created_idx").on(t.status, t.createdAt),
  ],
);

// ---------------------------------------------------------------------------------------------
// Notification preferences (API.md §5b)

/**
 * A user's choices per notification type and channel, their email digest and time zone. One row
 * per user, created on the first PUT; without one, NOTIFICATION_DEFAULTS apply. `types` holds only
 * what the user changed from the defaults, so a new type gets its default for everyone.
 */
export const notificationPreferences = sqliteTable("notification_preferences", {
  userId: text("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  types: text("types", { mode: "json" })
    .$type<Record<string, Partial<Record<"in_app" | "email" | "push", boolean>>>>()
    .notNull()
    .default(sql`'{}'`),
  digest: text("digest", { enum: ["immediate", "daily", "weekly", "off"] })
    .notNull()
    .default("daily"),
  timeZone: text("time_zone").notNull().default("UTC"),
  updatedAt: text("updated_at").notNull().default(now),
});

/** Addresses that hard-bounced or complained (the email provider's webhook): they get no email. */
export const emailSuppressions = sqliteTable("email_suppressions", {
  address: text("address").primaryKey(),
  reason: text("reason", { enum: ["bounce", "complaint"] }).notNull(),
  eventId: text("event_id").notNull(),
  createdAt: text("created_at").notNull().default(now),
});

/** Webhook deliveries already processed, by their `svix-id`: a replay changes nothing. */
export const emailWebhookEvents = sqliteTable(
  "email_webhook_events",
  {
    id: text("id").primaryKey(),
    type: text("type").notNull(),
    receivedAt: text("received_at").notNull().default(now),
  },
  (t) => [index("email_webhook_events_received_idx").on(t.receivedAt)],
);

/**
 * A user's calendar subscription (API.md §5b): calendar apps fetch `calendar.ics` at a signed URL
 * naming this row. One per user; issuing a new one replaces it, deleting it revokes the URL.
 */
export const calendarFeeds = sqliteTable("calendar_feeds", {
  id: text("id").primaryKey(),
  userId: text("user_id")
    .notNull()
    .unique("calendar_feeds_user_unique")
    .references(() => users.id, { onDelete: "cascade" }),
  createdAt: text("created_at").notNull().default(now),
  lastFetchedAt: text("last_fetched_at"),
  /** The session (refresh-token family) that issued the URL: ended as stolen, it takes the URL with it. */
  sessionId: text("session_id"),
  /**
   * Key id of the JWT_SECRET that signed the URL (migrations/0048), as last seen: set on issue and
   * on each fetch; null for a URL issued before and not fetched since.
   */
  keyId: text("key_id"),
});

/**
 * The generation of the blog's edge cache (one row). Cached public reads are keyed with it, and
 * every change readers can see bumps it, so a purge reaches every data centre at once.
 */
export const blogCacheState = sqliteTable("blog_cache_state", {
  id: integer("id").primaryKey(),
  version: integer("version").notNull().default(1),
});

/** Per-type channel defaults, read by the delivery triggers (migrations/0020); equal to NOTIFICATION_DEFAULTS. */
export const notificationTypeDefaults = sqliteTable("notification_type_defaults", {
  type: text("type").primaryKey(),
  inApp: integer("in_app", { mode: "boolean" }).notNull(),
  email: integer("email", { mode: "boolean" }).notNull(),
  push: integer("push", { mode: "boolean" }).notNull(),
  urgent: integer("urgent", { mode: "boolean" }).notNull(),
});

export const DELIVERY_STATUSES = ["held", "queued", "sending", "sent", "skipped", "digested", "failed"] as const;

/**
 * One email or push message to send (written by the triggers on `notifications`), or one digest
 * email gathering `held` emails (`digest_id` on them). See migrations/0020 for the states.
 */
export const notificationDeliveries = sqliteTable(
  "notification_deliveries",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    notificationId: text("notification_id").references(() => notifications.id, { onDelete: "cascade" }),
    channel: text("channel", { enum: ["email", "push"] }).notNull(),
    /** The notification's type, or `digest`. */
    type: text("type").notNull(),
    dedupeKey: text("dedupe_key").notNull(),
    status: text("status", { enum: DELIVERY_STATUSES }).notNull(),
    digestId: text("digest_id"),
    /** A digest's period (`daily:2026-12-03`, `weekly:2026-W49`). */
    period: text("period"),
    attempts: integer("attempts").notNull().default(0),
    /** `sending`: when it was claimed. `queued` after a failed attempt: when the queue's retry is due. */
    claimedAt: text("claimed_at"),
    sentAt: text("sent_at"),
    providerId: text("provider_id"),
    detail: text("detail"),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [
    uniqueIndex("notification_deliveries_dedupe_unique").on(t.dedupeKey),
    index("notification_deliveries_notification_idx").on(t.notificationId),
    index("notification_deliveries_user_status_idx").on(t.userId, t.status),
    index("notification_deliveries_digest_idx").on(t.digestId).where(sql`${t.digestId} IS NOT NULL`),
    index("notification_deliveries_open_idx").on(t.status, t.createdAt).where(sql`${t.status} IN ('held', 'queued', 'sending')`),
    // gatherDigests' page of readers holding mail (migration 0040).
    index("notification_deliveries_held_idx").on(t.status, t.userId, t.createdAt).where(sql`${t.status} = 'held'`),
  ],
);

/** A device's Web Push subscription (API.md §5b); an endpoint belongs to one user. */
export const pushSubscriptions = sqliteTable(
  "push_subscriptions",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    endpoint: text("endpoint").notNull(),
    p256dh: text("p256dh").notNull(),
    auth: text("auth").notNull(),
    userAgent: text("user_agent"),
    createdAt: text("created_at").notNull().default(now),
    lastSuccessAt: text("last_success_at"),
    /** The session (refresh-token family) that subscribed the device: signing it out unsubscribes it. */
    sessionId: text("session_id"),
    /** Its first failed attempt (5xx, unreachable) since it last took a push; null while healthy. */
    failingSince: text("failing_since"),
    /** Attempts failed since `failingSince`. */
    failedAttempts: integer("failed_attempts").notNull().default(0),
  },
  (t) => [uniqueIndex("push_subscriptions_endpoint_unique").on(t.endpoint), index("push_subscriptions_user_idx").on(t.userId)],
);

/** The subscriptions a push delivery has reached, so a retry sends only to the others. */
export const pushSends = sqliteTable(
  "push_sends",
  {
    deliveryId: text("delivery_id")
      .notNull()
      .references(() => notificationDeliveries.id, { onDelete: "cascade" }),
    subscriptionId: text("subscription_id")
      .notNull()
      .references(() => pushSubscriptions.id, { onDelete: "cascade" }),
    sentAt: text("sent_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.deliveryId, t.subscriptionId] })],
);

/** A report on a community proposal; moderators hide the proposal or dismiss the reports. */
export const proposalReports = sqliteTable(
  "proposal_reports",
  {
    resultId: text("result_id")
      .notNull()
      .references(() => identificationResults.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    reason: text("reason").notNull(),
    createdAt: text("created_at").notNull().default(now),
    resolvedAt: text("resolved_at"),
  },
  (t) => [
    primaryKey({ columns: [t.resultId, t.userId] }),
    // A user's rows in the account export's order; also what deleting the user walks (migration 0054).
    index("proposal_reports_user_created_idx").on(t.userId, t.createdAt, t.resultId),
  ],
);

/** A fitted calibration map per provider and version (migrations/0022); the newest version is in use. */
export const calibrations = sqliteTable(
  "calibrations",
  {
    provider: text("provider", { enum: ["plant_id", "plantnet"] }).notNull(),
    version: integer("version").notNull(),
    method: text("method").notNull(),
    samples: integer("samples").notNull(),
    positives: integer("positives").notNull(),
    points: text("points", { mode: "json" }).$type<[number, number][]>().notNull(),
    fittedAt: text("fitted_at").notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.provider, t.version] })],
);

/** Idempotency-Key claims and stored answers (migrations/0023; services/idempotency.ts). */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    fingerprint: text("fingerprint").notNull(),
    claim: text("claim").notNull(),
    state: text("state", { enum: ["running", "done"] }).notNull(),
    lockedUntil: text("locked_until").notNull(),
    status: integer("status"),
    headers: text("headers", { mode: "json" }).$type<[string, string][]>(),
    body: text("body"),
    createdAt: text("created_at").notNull().default(now),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.key] }),
    index("idempotency_keys_expires").on(t.expiresAt),
    // The per-account cap's count of live keys (migrations 0037, 0040).
    index("idempotency_keys_user_expires").on(t.userId, t.expiresAt),
  ],
);

/** Edge-cache generations per area of public reads (migrations/0025; services/public-cache.ts). */
export const cacheGenerations = sqliteTable("cache_generations", {
  area: text("area", { enum: ["species", "diseases", "forum"] }).primaryKey(),
  version: integer("version").notNull().default(1),
});
