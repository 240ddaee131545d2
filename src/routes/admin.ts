/**
 * /api/v1/admin — staff tools. Listing users is for moderators and up (emails and sign-in
 * details for admins only); changing roles, deactivating and deleting accounts, and reading or
 * lifting an address's email suppression, is for admins only (the CLI `npm run admin -- grant-role`
 * bootstraps the first admin; `lift-suppression` lifts one from the command line).
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { userIdOf } from "../middleware/auth";
import { createRouter, routeSet } from "./router";
import { AppError } from "../lib/errors";
import { deleteAccountAsAdmin } from "../services/account-deletion";
import { setAccountActive } from "../services/accounts";
import { findSuppression, liftSuppression, type Suppression } from "../services/email-events";
import { listUsers, setUserRole, staffUserView, userProfile } from "../services/users";
import { UserProfileSchema } from "./auth";
import { pageOf, PaginationQuery } from "./pagination";
import { jsonBody, noContent, pageSchema, searchText, errorResponse } from "./schemas";

const tags = ["Admin"];
/** A listed account: admins get the whole profile, moderators and editors no sign-in details. */
const ListedUserSchema = UserProfileSchema.partial({ email: true, email_verified: true, pending_email: true, last_login: true }).openapi(
  "ListedUser",
);
const errors = {
  401: errorResponse(401, "Not authenticated"),
  403: errorResponse(403, "Wrong role"),
  404: errorResponse(404, "No such user"),
};

/** An address's suppression as the admin routes answer it. */
const SuppressionSchema = z
  .object({
    address: z.string().openapi({ description: "The bare, lower-cased address" }),
    reason: z
      .enum(["bounce", "complaint"])
      .openapi({ description: "What the email provider reported: a hard bounce, or a spam complaint" }),
    created_at: z.string().openapi({ description: "When it was reported" }),
  })
  .openapi("EmailSuppression");
const AddressParams = z.object({ address: z.email("Enter a valid email address.").max(254) });
const suppressionBody = (s: Suppression) => ({ address: s.address, reason: s.reason, created_at: s.createdAt });
const notSuppressed = () => new AppError("NOT_FOUND", 404, "We send email to this address: it is not suppressed.");

/** `id`, unless it is the caller's own account (400 with `message`): an admin acts on others' here. */
function notOwnAccount(c: Context<AppEnv>, id: string, message: string): string {
  if (id === userIdOf(c)) throw new AppError("VALIDATION_ERROR", 400, message, { id: ["Choose another account."] });
  return id;
}

export function adminRoutes() {
  const app = createRouter();
  const open = routeSet({ tags, errors });
  const admins = open.forRoles("admin");
  const staff = open.forRoles("moderator", "editor", "admin");

  const getUsers = staff.get("/users", "List users (staff)").io(
    { query: PaginationQuery.extend({ search: searchText(100).optional() }) },
    { 200: jsonBody(pageSchema(ListedUserSchema, "UserPage"), "Users") },
    {
      description:
        "Newest first. Admins see every field and `search` matches usernames and emails; moderators and editors " +
        "see no sign-in details (email, email_verified, pending_email, last_login) and `search` matches usernames only.",
    },
  );
  app.openapi(getUsers, async (c) => {
    const { page, page_size, search } = c.req.valid("query");
    const isAdmin = c.get("user")?.role === "admin";
    const { count, rows } = await listUsers(c.env, search, { page, pageSize: page_size }, { byEmail: isAdmin });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(isAdmin ? userProfile : staffUserView)), 200);
  });

  const patchUsersByIdRole = admins.patch("/users/{id}/role", "Change a user's role (admin)").io(
    {
      params: z.object({ id: z.uuid() }),
      body: {
        content: { "application/json": { schema: z.strictObject({ role: z.enum(["user", "author", "moderator", "editor", "admin"]) }) } },
        required: true,
      },
    },
    {
      200: jsonBody(UserProfileSchema, "Updated user"),
      409: errorResponse(409, "The last active admin (make another account an admin first)", "INVALID_STATE"),
    },
    { description: "The service keeps an administrator: the last active admin cannot be given another role, their own included." },
  );
  app.openapi(patchUsersByIdRole, async (c) => {
    const { id } = c.req.valid("param");
    const { role } = c.req.valid("json");
    return c.json(userProfile(await setUserRole(c.env, id, role)), 200);
  });

  const patchUsersByIdActive = admins.patch("/users/{id}/active", "Deactivate or reactivate an account (admin)").io(
    {
      params: z.object({ id: z.uuid() }),
      body: {
        content: { "application/json": { schema: z.strictObject({ is_active: z.boolean() }).openapi("AccountActive") } },
        required: true,
      },
    },
    {
      200: jsonBody(UserProfileSchema, "Updated user"),
      409: errorResponse(409, "A deleted account (cannot be reactivated), or the last active admin", "INVALID_STATE"),
    },
    {
      description:
        "Deactivation ends every session of the account at once: its refresh and access tokens stop working and its " +
        "WebSockets close with 4401. A deactivated account cannot sign in until reactivated.",
    },
  );
  app.openapi(patchUsersByIdActive, async (c) => {
    const id = notOwnAccount(c, c.req.valid("param").id, "You cannot deactivate your own account here.");
    const user = await setAccountActive(c.env, id, c.req.valid("json").is_active, c.get("logger"));
    return c.json(userProfile(user), 200);
  });

  const deleteUsersById = admins.delete("/users/{id}", "Delete an account on its owner's behalf (admin)").io(
    { params: z.object({ id: z.uuid() }) },
    {
      ...noContent("Deleted: every session of the account has ended"),
      409: errorResponse(409, "A staff account (demote it first), or one deleted already", "INVALID_STATE"),
    },
    {
      description:
        "For a support request (the owner lost every way in, or asked in writing): the same erasure as the owner's own " +
        "`POST auth/user/delete/` — private data deleted, forum posts and comments kept under a generated name, the old " +
        "address told. Staff accounts are demoted first. Cannot be undone.",
    },
  );
  app.openapi(deleteUsersById, async (c) => {
    const id = notOwnAccount(c, c.req.valid("param").id, "Delete your own account with auth/user/delete/.");
    await deleteAccountAsAdmin(c.env, id, c.get("logger"));
    return c.body(null, 204);
  });

  const suppressionErrors = { 404: errorResponse(404, "The address is not suppressed", "NOT_FOUND") };
  const getSuppression = admins.get("/email-suppressions/{address}", "Whether an address gets no email, and why (admin)").io(
    { params: AddressParams },
    { 200: jsonBody(SuppressionSchema, "Suppressed"), ...suppressionErrors },
    {
      description: 'For a support request ("I get no email"). The address is matched without case; 400 when it is not an email address.',
    },
  );
  app.openapi(getSuppression, async (c) => {
    const found = await findSuppression(c.env, c.req.valid("param").address);
    if (!found) throw notSuppressed();
    return c.json(suppressionBody(found), 200);
  });

  const deleteSuppression = admins.delete("/email-suppressions/{address}", "Lift an address's email suppression (admin)").io(
    { params: AddressParams },
    { 200: jsonBody(SuppressionSchema, "Lifted: mail goes to the address again"), ...suppressionErrors },
    {
      description:
        "Lifts a hard bounce or a spam complaint (a complaint only on its holder's word: they marked our mail as spam once). " +
        "If the address bounces or complains again, the provider's webhook suppresses it again. An account's own user lifts a " +
        "bounce by asking for a confirmation link (`POST auth/email/verify/`); a complaint only staff lift.",
    },
  );
  app.openapi(deleteSuppression, async (c) => {
    const lifted = await liftSuppression(c.env, c.req.valid("param").address);
    if (!lifted) throw notSuppressed();
    c.get("logger")?.info("email suppression lifted by staff", { by: userIdOf(c), reason: lifted.reason });
    return c.json(suppressionBody(lifted), 200);
  });

  return app;
}
