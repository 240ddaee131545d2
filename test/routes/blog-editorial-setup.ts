/** Shared setup of the editorial API tests: users with blog roles, uploads, posts. */
import { env } from "cloudflare:workers";
import type { z } from "zod";
import type { PostDetailSchema } from "../../src/routes/blog";
import { call, jsonWithStatus as json } from "../helpers/http";
import { makePng } from "../helpers/images";
import { bearerUser } from "../helpers/users";

export const API = "/api/v1/blog";
export type Post = z.infer<typeof PostDetailSchema>;

let seq = 0;
export const uniq = () => `${++seq}${crypto.randomUUID().slice(0, 8)}`;

/** A signed-in user with this role, set directly in D1. */
export async function withRole(role: "user" | "author" | "moderator" | "editor" | "admin") {
  const u = await bearerUser();
  if (role !== "user") await env.DB.prepare("UPDATE users SET role = ? WHERE id = ?").bind(role, u.userId).run();
  return u;
}

export async function upload(bearer: string, bytes?: Uint8Array, type = "image/png") {
  const form = new FormData();
  form.append("image", new File([bytes ?? (await makePng(320, 200, { seed: uniq() }))], "photo.png", { type }));
  return call(`${API}/images/`, { bearer, body: form });
}

export async function uploaded(bearer: string): Promise<string> {
  return (await json<{ id: string }>(await upload(bearer), 201)).id;
}

export const createPost = async (bearer: string, body: Record<string, unknown>) =>
  json<Post>(await call(`${API}/posts/`, { bearer, json: { title: `A post ${uniq()}`, ...body } }), 201);

export const patchPost = (bearer: string, id: string, body: Record<string, unknown>) =>
  call(`${API}/posts/${id}/`, { method: "PATCH", bearer, json: body });

export const action = (bearer: string, id: string, what: "submit" | "publish" | "unpublish") =>
  call(`${API}/posts/${id}/${what}/`, { method: "POST", bearer });

export const getPost = (idOrSlug: string, bearer?: string) => call(`${API}/posts/${idOrSlug}/`, { bearer });

export const row = (id: string) =>
  env.DB.prepare("SELECT status, revision, title, slug, scheduled_at, first_published_at, last_published_at FROM blog_posts WHERE id = ?")
    .bind(id)
    .first<{
      status: string;
      revision: number;
      title: string;
      slug: string;
      scheduled_at: string | null;
      first_published_at: string | null;
      last_published_at: string | null;
    }>();

export const postCount = async () => (await env.DB.prepare("SELECT count(*) AS n FROM blog_posts").first<{ n: number }>())!.n;
export const revisionCount = async (id: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM blog_revisions WHERE post_id = ?").bind(id).first<{ n: number }>())!.n;
export const inR2 = async (ref: string) => (await env.IMAGES.head(`images/${ref}`)) !== null;

/** A category made by an editor. */
export async function category(editorBearer: string, name = `Care ${uniq()}`) {
  return json<{ id: string; slug: string; name: string }>(await call(`${API}/categories/`, { bearer: editorBearer, json: { name } }), 201);
}
