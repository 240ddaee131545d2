/**
 * Unified search (API.md §5 "Search") under /api/v1/search/: ranked hits per type with counts,
 * and completions at `suggestions/`. Anonymous and cacheable for 30 s. Ranking rules are in
 * src/services/search.ts. Blog hits are published posts only.
 */
import { z } from "@hono/zod-openapi";
import { createRouter, routeSet } from "./router";
import { DISEASE_TYPES } from "../services/diseases";
import { MAX_SUGGESTIONS, SEARCH_TYPES, searchSuggestions, unifiedSearch, type SearchType } from "../services/search";
import { jsonBody, searchText, errorResponse } from "./schemas";

const tags = ["Search"];
const CACHE_CONTROL = "public, max-age=30";
const ACCEPTED_TYPES: readonly string[] = SEARCH_TYPES;

const q = searchText(100).min(1, "Enter something to search for.").openapi({
  description: "Trimmed, 1..100 characters, no control characters. Case-insensitive; `%` and `_` match literally.",
  example: "monstera",
});

const types = z
  .string()
  .max(200)
  .optional()
  .transform((raw, ctx) => {
    const list = [
      ...new Set(
        (raw ?? "")
          .split(",")
          .map((t) => t.trim().toLowerCase())
          .filter(Boolean),
      ),
    ];
    const unknown = list.filter((t) => !ACCEPTED_TYPES.includes(t));
    if (unknown.length > 0) {
      ctx.addIssue({ code: "custom", message: `Unknown type(s): ${unknown.join(", ")}. Use ${ACCEPTED_TYPES.join(", ")}.` });
      return z.NEVER;
    }
    return list.length > 0 ? list : [...SEARCH_TYPES];
  })
  .openapi({
    type: "string",
    description: `Comma-separated: ${ACCEPTED_TYPES.join(", ")} (default: all).`,
    example: "species,forum",
  });

const Hit = {
  id: z.string().openapi({ description: "The species', post's or topic's id; for a disease, a stable UUID of its name." }),
  title: z.string(),
  snippet: z.string().openapi({ description: "Short plain text (no markup)." }),
  url: z.string().openapi({ description: "API path of the thing found." }),
  score: z.number().openapi({
    description:
      "0..1, higher is better; comparable within one type only (1 exact, 0.8 prefix or a species name holding it as whole words, 0.7 a word of a species name starts with it, 0.6 contains, 0.4 body/description only, 0.3 typo-tolerant species).",
  }),
};
const SpeciesHit = z
  .object({ type: z.literal("species"), ...Hit, common_names: z.array(z.string()), family: z.string() })
  .openapi("SearchSpeciesHit");
const ForumHit = z
  .object({
    type: z.literal("forum"),
    ...Hit,
    category: z.string().openapi({ description: "The topic's category slug." }),
    post_id: z.string().nullable().openapi({ description: "The post whose text matched (null when only the title did)." }),
    last_activity_at: z.string(),
  })
  .openapi("SearchForumHit");
const BlogHit = z
  .object({
    type: z.literal("blog"),
    ...Hit,
    slug: z.string(),
    publish_date: z.string().openapi({ description: "First published, YYYY-MM-DD." }),
  })
  .openapi("SearchBlogHit");
const DiseaseHit = z
  .object({ type: z.literal("diseases"), ...Hit, disease_type: z.enum(DISEASE_TYPES), confirmed_diagnoses: z.number().int() })
  .openapi("SearchDiseaseHit");

const SearchResponse = z
  .object({
    query: z.string(),
    results: z
      .object({
        species: z.array(SpeciesHit).optional(),
        forum: z.array(ForumHit).optional(),
        diseases: z.array(DiseaseHit).optional(),
        blog: z.array(BlogHit).optional(),
      })
      .openapi({ description: "One list per requested type, best first, at most `limit` each." }),
    counts: z
      .object({
        species: z.number().int().optional(),
        forum: z.number().int().optional(),
        diseases: z.number().int().optional(),
        blog: z.number().int().optional(),
      })
      .openapi({ description: "All matches per requested type (not only those listed)." }),
    total: z.number().int().openapi({ description: "Sum of counts." }),
  })
  .openapi("SearchResults");

const SuggestionsResponse = z
  .object({ query: z.string(), suggestions: z.array(z.object({ text: z.string(), type: z.enum(["species", "blog", "forum"]) })) })
  .openapi("SearchSuggestions");

export function searchRoutes() {
  const app = createRouter();
  const plain = routeSet({ tags, errors: {} });

  const getRoot = plain
    .get("/", "Search species, published blog posts, forum topics and confirmed diseases at once: ranked hits and counts per type")
    .io(
      {
        query: z.object({
          q,
          types,
          limit: z.coerce.number().int().min(1).max(50).default(5).openapi({ description: "Hits per type, 1..50." }),
        }),
      },
      {
        200: jsonBody(SearchResponse, "Hits grouped by type"),
        400: errorResponse(400, "Missing or invalid query, unknown type or bad limit"),
      },
    );
  app.openapi(getRoot, async (c) => {
    const { q, types, limit } = c.req.valid("query");
    const found = await unifiedSearch(c.env, q, types as SearchType[], limit);
    const results: Record<string, unknown[]> = {};
    const counts: Record<string, number> = {};
    for (const type of types) {
      const group = found[type as SearchType];
      results[type] = group?.hits ?? [];
      counts[type] = group?.total ?? 0;
    }
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    c.header("Cache-Control", CACHE_CONTROL);
    return c.json({ query: q, results, counts, total }, 200);
  });

  const getSuggestions = plain
    .get(
      `/suggestions`,
      `Up to ${MAX_SUGGESTIONS} completions: species names, published blog post titles and forum topic titles starting with the query`,
    )
    .io(
      { query: z.object({ q }) },
      { 200: jsonBody(SuggestionsResponse, "Completions"), 400: errorResponse(400, "Missing or too long query") },
    );
  app.openapi(getSuggestions, async (c) => {
    const { q } = c.req.valid("query");
    const suggestions = await searchSuggestions(c.env, q);
    c.header("Cache-Control", CACHE_CONTROL);
    return c.json({ query: q, suggestions }, 200);
  });

  return app;
}
