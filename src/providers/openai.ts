/**
 * OpenAI client for care guides — PROVIDERS.md §4. Chat Completions with Structured Outputs
 * (`response_format: json_schema`, strict), so the answer is JSON of our schema or an explicit
 * refusal. The model is configuration (OPENAI_MODEL), never code: models are retired often.
 */
import { z } from "zod";
import { errorFromResponse, fetchWithTimeout, readJson } from "./http";
import { ProviderError } from "./types";

export interface OpenAISettings {
  baseUrl: string;
  apiKey: string;
  model: string;
  timeoutMs: number;
}

const Section = z.object({ requirement: z.string(), details: z.string() });
export const CareGuideSchema = z.object({
  overview: z.string(),
  difficulty_level: z.enum(["very_easy", "easy", "moderate", "challenging", "difficult"]),
  light: Section,
  water: z.object({ frequency: z.string(), amount: z.string() }),
  soil: z.string(),
  temperature: z.string(),
  humidity: z.string(),
  fertilizer: z.string(),
  pruning: z.string(),
  repotting: z.string(),
  propagation: z.string(),
  common_issues: z.array(z.string()),
  toxicity: z.string(),
});
export type CareGuide = z.infer<typeof CareGuideSchema>;

/** The same shape as JSON Schema for Structured Outputs: every key required, no extras. */
const text = { type: "string" } as const;
const object = (properties: Record<string, unknown>) => ({
  type: "object",
  additionalProperties: false,
  required: Object.keys(properties),
  properties,
});
const CARE_GUIDE_JSON_SCHEMA = object({
  overview: text,
  difficulty_level: { type: "string", enum: ["very_easy", "easy", "moderate", "challenging", "difficult"] },
  light: object({ requirement: text, details: text }),
  water: object({ frequency: text, amount: text }),
  soil: text,
  temperature: text,
  humidity: text,
  fertilizer: text,
  pruning: text,
  repotting: text,
  propagation: text,
  common_issues: { type: "array", items: text },
  toxicity: text,
});

const CompletionSchema = z.object({
  choices: z
    .array(
      z.object({
        finish_reason: z.string().nullish(),
        message: z.object({ content: z.string().nullish(), refusal: z.string().nullish() }),
      }),
    )
    .min(1),
});

export async function generateCareGuide(
  settings: OpenAISettings,
  plant: { scientificName: string; commonName?: string; language: string },
): Promise<CareGuide> {
  if (!settings.apiKey) throw new ProviderError("openai", "auth", "OPENAI_API_KEY is not configured");
  const res = await fetchWithTimeout(
    "openai",
    `${settings.baseUrl.replace(/\/+$/, "")}/chat/completions`,
    {
      method: "POST",
      headers: { Authorization: `Bearer ${settings.apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        model: settings.model,
        messages: [
          {
            role: "system",
            content:
              "You are a horticulturist. Give practical, accurate care advice for home gardeners. " +
              "Answer only with JSON matching the schema. Say plainly when a plant is toxic to people or pets.",
          },
          {
            role: "user",
            content:
              `Care guide for ${plant.scientificName}${plant.commonName ? ` (${plant.commonName})` : ""}. ` +
              `Write it in the language with code "${plant.language}".`,
          },
        ],
        response_format: { type: "json_schema", json_schema: { name: "care_guide", strict: true, schema: CARE_GUIDE_JSON_SCHEMA } },
        max_completion_tokens: 1500,
      }),
    },
    { timeoutMs: settings.timeoutMs, credentials: [settings.apiKey] },
  );
  if (!res.ok) {
    const error = await errorFromResponse("openai", res);
    // `insufficient_quota` is billing: retrying will not help, unlike `rate_limit_exceeded`.
    if (error.kind === "rate_limited" && /insufficient_quota/.test(error.message)) {
      throw new ProviderError("openai", "auth", "OpenAI quota exhausted (insufficient_quota)", 429);
    }
    throw error;
  }
  const parsed = CompletionSchema.safeParse(await readJson("openai", res, settings.timeoutMs));
  if (!parsed.success) throw new ProviderError("openai", "malformed", "OpenAI answer has an unexpected shape", res.status);
  const choice = parsed.data.choices[0]!;
  if (choice.message.refusal) throw new ProviderError("openai", "bad_request", `OpenAI refused: ${choice.message.refusal}`);
  if (choice.finish_reason === "length") throw new ProviderError("openai", "malformed", "OpenAI answer was cut off (finish_reason length)");
  let content: unknown;
  try {
    content = JSON.parse(choice.message.content ?? "");
  } catch {
    throw new ProviderError("openai", "malformed", "OpenAI content is not JSON");
  }
  const guide = CareGuideSchema.safeParse(content);
  if (!guide.success) throw new ProviderError("openai", "malformed", "OpenAI content does not match the care-guide schema");
  return guide.data;
}
