/**
 * Identification requests made straight in storage, for tests that deliver the queue's jobs
 * themselves instead of going through `POST …/requests/`.
 */
import { env } from "cloudflare:workers";
import { sha256Hex } from "../../src/lib/hash";

/** Each kind's table and the one column its upload fills besides the photos. */
const PENDING = {
  identify: { table: "identification_requests", column: "organs", value: '["auto"]' },
  diagnose: { table: "disease_requests", column: "symptoms_description", value: "Brown spots." },
} as const;

/**
 * A pending request of `kind` (its job's `type`) of `userId` for `image`, stored in R2 as the
 * upload would (unless `keepPhoto` is false).
 */
export async function pendingRequest(
  kind: keyof typeof PENDING,
  userId: string,
  image: Uint8Array,
  { keepPhoto = true } = {},
): Promise<string> {
  const { table, column, value } = PENDING[kind];
  const sha = await sha256Hex(image);
  if (keepPhoto) await env.IMAGES.put(`images/${sha}.png`, image);
  const id = crypto.randomUUID();
  await env.DB.prepare(`INSERT INTO ${table} (id, user_id, status, image_hashes, ${column}) VALUES (?, ?, 'pending', ?, ?)`)
    .bind(id, userId, JSON.stringify([`${sha}.png`]), value)
    .run();
  return id;
}

/** An identified request of `userId` with one result (Monstera deliciosa), made straight in D1. */
export async function identifiedResult(userId: string): Promise<{ requestId: string; resultId: string }> {
  const [requestId, resultId] = [crypto.randomUUID(), crypto.randomUUID()];
  await env.DB.batch([
    env.DB.prepare("INSERT INTO identification_requests (id, user_id, image_hashes, status) VALUES (?, ?, '[]', 'identified')").bind(
      requestId,
      userId,
    ),
    env.DB.prepare(
      "INSERT INTO identification_results (id, request_id, scientific_name, plant_name, confidence_score, identification_source, rank) VALUES (?, ?, 'Monstera deliciosa', 'Monstera', 0.9, 'ai_combined', 1)",
    ).bind(resultId, requestId),
  ]);
  return { requestId, resultId };
}
