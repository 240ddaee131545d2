/**
 * Identification requests made straight in storage, for tests that deliver the queue's jobs
 * themselves instead of going through `POST …/requests/`.
 */
import { env } from "cloudflare:workers";
import { sha256Hex } from "../../src/lib/hash";

/** A pending identification request of `userId` for `image`, stored in R2 as the upload would (unless `keepPhoto` is false). */
export async function pendingIdentificationRequest(userId: string, image: Uint8Array, { keepPhoto = true } = {}): Promise<string> {
  const sha = await sha256Hex(image);
  if (keepPhoto) await env.IMAGES.put(`images/${sha}.png`, image);
  const id = crypto.randomUUID();
  await env.DB.prepare(
    "INSERT INTO identification_requests (id, user_id, status, image_hashes, organs) VALUES (?, ?, 'pending', ?, '[\"auto\"]')",
  )
    .bind(id, userId, JSON.stringify([`${sha}.png`]))
    .run();
  return id;
}

/** A pending disease request of `userId` for `image`, stored in R2 as the upload would. */
export async function pendingDiseaseRequest(userId: string, image: Uint8Array): Promise<string> {
  const sha = await sha256Hex(image);
  await env.IMAGES.put(`images/${sha}.png`, image);
  const id = crypto.randomUUID();
  await env.DB.prepare(
    "INSERT INTO disease_requests (id, user_id, status, image_hashes, symptoms_description) VALUES (?, ?, 'pending', ?, 'Brown spots.')",
  )
    .bind(id, userId, JSON.stringify([`${sha}.png`]))
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
