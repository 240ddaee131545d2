/**
 * GET /api/v1/plant-identification/species/{id}/care — care instructions for a species
 * (API.md §4): the stored AI guide, generated on first request when OpenAI is configured, else
 * rule-based advice from the catalogue. `?regenerate=true` asks for a fresh AI guide (limited
 * per user, CARE_REGENERATE_RATE_LIMIT, and with first-time guides 30 an hour).
 */
import { z } from "@hono/zod-openapi";
import { CARE_RULES_LANGUAGES } from "../services/care";
import { careForSpecies } from "../services/care-guides";
import { userIdOf } from "../middleware/auth";
import { createRouter, routeSet } from "./router";
import { errorResponse, errorResponses, IdParam, jsonBody } from "./schemas";

const CareSchema = z
  .object({
    species_id: z.uuid(),
    scientific_name: z.string(),
    care_instructions: z
      .record(z.string(), z.unknown())
      .nullable()
      .openapi({
        description: `The AI guide (\`source: "openai"\`), or the rule-based advice (\`source: "rules"\`). Both say in \`language\` which language they are written in: an AI guide the asked one (the language it is stored under), the rule-based advice the asked one when it is one of ${CARE_RULES_LANGUAGES.join(", ")}, else en.`,
      }),
  })
  .openapi("CareInstructions");
const CareQuery = z.object({
  language: z
    .string()
    .regex(/^[a-z]{2}$/, "Use a two-letter language code.")
    .default("en"),
  regenerate: z.enum(["true", "false"]).default("false"),
});

export function careRoutes() {
  const app = createRouter();
  const mine = routeSet({ tags: ["Species"], errors: errorResponses(401) }).signedIn();

  const getCare = mine.get("/species/{id}/care", "Care instructions for a species (AI guide, or rule-based with source: rules)").io(
    { params: IdParam, query: CareQuery },
    {
      200: jsonBody(CareSchema, "Care instructions"),
      404: errorResponse(404, "Unknown species"),
      429: errorResponse(429, "Too many regenerations: CARE_REGENERATE_RATE_LIMIT a minute, or the 30 AI guides an hour a user may cause"),
      503: errorResponse(503, "AI care unavailable for a regeneration"),
    },
  );
  app.openapi(getCare, async (c) => {
    const { language, regenerate } = c.req.valid("query");
    const { species, care } = await careForSpecies(
      c.env,
      { speciesId: c.req.valid("param").id, language, regenerate: regenerate === "true", userId: userIdOf(c) },
      c.get("logger"),
    );
    return c.json({ species_id: species.id, scientific_name: species.scientific_name, care_instructions: care }, 200);
  });
  return app;
}
