/** A plant in a public collection, made straight in D1: its photo is on show to anyone. */
import { env } from "cloudflare:workers";

/** Adds a plant showing photo `ref` to a new public collection of `userId`; the collection's id. */
export async function plantInPublicCollection(userId: string, ref: string): Promise<string> {
  const collection = crypto.randomUUID();
  await env.DB.batch([
    env.DB.prepare("INSERT INTO collections (id, user_id, name, is_public) VALUES (?, ?, 'Balcony', 1)").bind(collection, userId),
    env.DB.prepare("INSERT INTO user_plants (id, user_id, collection_id, image_key) VALUES (?, ?, ?, ?)").bind(
      crypto.randomUUID(),
      userId,
      collection,
      ref,
    ),
  ]);
  return collection;
}
