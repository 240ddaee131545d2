/**
 * URLs an upstream answer carries (Plant.id's `details.url` and similar images, Pl@ntNet's
 * reference images, Trefle's `image_url`) reach clients as links and image sources. An upstream
 * that is compromised, or a response altered on the way, must not be able to hand a client a
 * `javascript:` or `data:` link: only absolute http(s) URLs pass.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { assessHealthWithPlantId, identifyWithPlantId } from "../../src/providers/plant-id";
import { identifyWithPlantNet } from "../../src/providers/plantnet";
import { trefleSpeciesFor } from "../../src/providers/trefle";

const HOSTILE = [
  "javascript:alert(document.cookie)",
  " JaVaScRiPt:alert(1)",
  "data:text/html,<script>alert(1)</script>",
  "vbscript:msgbox(1)",
  "//evil.example/x",
];
const GOOD = "https://upstream.example/image.jpg";

function answer(json: unknown) {
  return vi.spyOn(globalThis, "fetch").mockImplementation(async () => Response.json(json));
}

afterEach(() => vi.restoreAllMocks());

/** Plant.id's identification answering one suggestion with these similar images and link (and `health`'s fields). */
function plantIdSays(similarImages: unknown[], link: string, health: Record<string, unknown> = {}) {
  answer({
    result: {
      is_plant: { probability: 0.9, binary: true },
      classification: {
        suggestions: [{ name: "Monstera deliciosa", probability: 0.9, similar_images: similarImages, details: { url: link } }],
      },
      ...health,
    },
  });
  return identifyWithPlantId(
    { baseUrl: "https://plant.id.example", apiKey: "k", timeoutMs: 5000 },
    { images: [new Uint8Array([1])], language: "en" },
  );
}

describe("upstream URLs reaching clients", () => {
  it("Plant.id: a suggestion's link and similar images that are not http(s) are dropped", async () => {
    for (const bad of HOSTILE) {
      const result = await plantIdSays(
        [
          { url: bad, url_small: bad },
          { url: GOOD, url_small: bad },
        ],
        bad,
        {
          is_healthy: { probability: 0.2, binary: false },
          disease: { suggestions: [{ name: "rot", probability: 0.5, similar_images: [{ url: bad }], details: { url: bad } }] },
        },
      );
      const suggestion = result.suggestions[0]!;
      expect(suggestion.url).toBeNull();
      expect(suggestion.similarImages).toEqual([{ url: GOOD }]);
      const disease = result.health!.diseases[0]!;
      expect(disease.url).toBeNull();
      expect(disease.similarImages).toEqual([]);
      vi.restoreAllMocks();
    }
  });

  it("Plant.id health assessment: the same", async () => {
    answer({
      result: {
        is_plant: { probability: 0.9 },
        is_healthy: { probability: 0.1 },
        disease: {
          suggestions: [
            { name: "rot", probability: 0.5, similar_images: [{ url: HOSTILE[0] }, { url: GOOD }], details: { url: HOSTILE[2] } },
          ],
        },
      },
    });
    const result = await assessHealthWithPlantId(
      { baseUrl: "https://plant.id.example", apiKey: "k", timeoutMs: 5000 },
      { images: [new Uint8Array([1])], language: "en" },
    );
    expect(result.health!.diseases[0]!.url).toBeNull();
    expect(result.health!.diseases[0]!.similarImages).toEqual([{ url: GOOD }]);
  });

  it("Plant.id: good links pass unchanged", async () => {
    const result = await plantIdSays(
      [{ url: GOOD, url_small: "http://upstream.example/s.jpg" }],
      "https://en.wikipedia.org/wiki/Monstera_deliciosa",
    );
    expect(result.suggestions[0]!.url).toBe("https://en.wikipedia.org/wiki/Monstera_deliciosa");
    expect(result.suggestions[0]!.similarImages).toEqual([{ url: GOOD, url_small: "http://upstream.example/s.jpg" }]);
  });

  it("Pl@ntNet: reference images that are not http(s) are dropped (a good medium size is kept)", async () => {
    answer({
      results: [
        {
          score: 0.8,
          species: { scientificNameWithoutAuthor: "Monstera deliciosa" },
          images: [{ url: { o: HOSTILE[0], m: HOSTILE[2], s: HOSTILE[1] } }, { url: { o: GOOD, m: HOSTILE[0], s: HOSTILE[3] } }],
        },
      ],
    });
    const result = await identifyWithPlantNet(
      { baseUrl: "https://plantnet.example", apiKey: "k", timeoutMs: 5000 },
      {
        images: [{ bytes: new Uint8Array([1]), mime: "image/jpeg" }],
        organs: ["leaf"],
        project: "all",
        includeRelatedImages: true,
        maxResults: 5,
        language: "en",
      },
    );
    expect(result.suggestions[0]!.similarImages).toEqual([{ url: GOOD }]);
  });

  it("Trefle: an image_url that is not http(s) is dropped", async () => {
    for (const bad of HOSTILE) {
      vi.spyOn(globalThis, "fetch").mockImplementation(async (input) =>
        String(input).includes("/species/7")
          ? Response.json({ data: { id: 7, scientific_name: "Monstera deliciosa", image_url: bad } })
          : Response.json({ data: [{ id: 7, scientific_name: "Monstera deliciosa" }] }),
      );
      const species = await trefleSpeciesFor({ baseUrl: "https://trefle.example", token: "t", timeoutMs: 5000 }, "Monstera deliciosa");
      expect(species!.imageUrl).toBeNull();
      vi.restoreAllMocks();
    }
  });
});
