/**
 * The species ranking's rules on their own (src/services/species-ranking.ts): normalisation,
 * edit distance, tiers, the relevance floor and the order of ties. Over the whole seeded
 * catalogue in test/routes/search-quality.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  editDistance,
  MatchTier,
  normaliseSearchText,
  type RankCandidate,
  rankCandidates,
  typoBudget,
} from "../src/services/species-ranking";

const species = (scientificName: string, commonNames: string[], identificationCount = 0, family = "Testaceae"): RankCandidate => ({
  scientificName,
  commonNames,
  family,
  identificationCount,
});
const order = (q: string, candidates: RankCandidate[]) => rankCandidates(q, candidates).map((m) => m.candidate.scientificName);

describe("normaliseSearchText", () => {
  it("folds case, accents, apostrophes and punctuation", () => {
    expect(normaliseSearchText("  Devil’s-Ivy  ")).toBe("devils ivy");
    expect(normaliseSearchText("Chrysanthemum × morifolium")).toBe("chrysanthemum morifolium");
    expect(normaliseSearchText("Crème brûlée")).toBe("creme brulee");
    expect(normaliseSearchText('%_*"^(')).toBe("");
  });
});

describe("editDistance", () => {
  it("counts insertions, deletions, substitutions and neighbour swaps, and gives up past the limit", () => {
    expect(editDistance("lilly", "lily", 2)).toBe(1);
    expect(editDistance("foxglvoe", "foxglove", 2)).toBe(1);
    expect(editDistance("lavendar", "lavender", 2)).toBe(1);
    expect(editDistance("keyboard", "lavender", 2)).toBe(3);
    expect(editDistance("abc", "abcdefgh", 1)).toBe(2);
  });
  it("in prefix mode measures against the closest start of the target", () => {
    expect(editDistance("pointset", "poinsettia", 1, true)).toBe(1);
    expect(editDistance("lavend", "lavender cotton", 1, true)).toBe(0);
    expect(editDistance("xyz", "lavender", 1, true)).toBe(2);
  });
  it("allows no typo in short words, one up to 8 characters, two beyond", () => {
    expect([4, 5, 8, 9, 30].map(typoBudget)).toEqual([0, 1, 1, 2, 2]);
  });
});

describe("rankCandidates", () => {
  const catalogue = [
    species("Lavandula angustifolia", ["English lavender", "common lavender"]),
    species("Santolina chamaecyparissus", ["lavender cotton"], 50),
    species("Spathiphyllum wallisii", ["peace lily"]),
    species("Lilium regale", ["regal lily"], 10),
    species("Salvia rosmarinus", ["rosemary"]),
    species("Westringia fruticosa", ["coastal rosemary"], 500),
    species("Rosa canina", ["dog rose"], 0, "Rosaceae"),
    species("Hibiscus syriacus", ["rose of Sharon"], 0, "Malvaceae"),
  ];

  it("ranks common names given as the catalogue's JSON text exactly as the parsed list, and a malformed list as none", () => {
    const stored = catalogue.map((c) => ({ ...c, commonNames: JSON.stringify(c.commonNames) }));
    for (const q of ["rosemary", "lavender", "lavendar", "peace lilly", "ro", "dog rose", "rosaceae", "regal"]) {
      const fromText = rankCandidates(q, stored).map((m) => [m.candidate.scientificName, m.tier, m.edits, m.head, m.nameLength]);
      const fromList = rankCandidates(q, catalogue).map((m) => [m.candidate.scientificName, m.tier, m.edits, m.head, m.nameLength]);
      expect(fromText, q).toEqual(fromList);
      expect(fromText.length, q).toBeGreaterThan(0);
    }
    const broken = [
      species("Lavandula stoechas", []),
      { ...species("Lavandula dentata", []), commonNames: '["French lavender"' },
      { ...species("Lavandula latifolia", []), commonNames: '{"name": "spike lavender"}' },
      { ...species("Lavandula multifida", []), commonNames: '["fernleaf lavender", 7, null]' },
    ];
    // Only the well-formed string entry counts; the rest never throw and never match.
    expect(order("lavender", broken)).toEqual(["Lavandula multifida"]);
    expect(order("french", broken)).toEqual([]);
    expect(order("spike", broken)).toEqual([]);
  });

  it("puts an exact name before popularity, whole words before a mere prefix, typos last", () => {
    expect(order("rosemary", catalogue)).toEqual(["Salvia rosmarinus", "Westringia fruticosa"]);
    const lavender = rankCandidates("lavender", catalogue);
    expect(lavender.map((m) => [m.candidate.scientificName, m.tier])).toEqual([
      ["Santolina chamaecyparissus", MatchTier.word],
      ["Lavandula angustifolia", MatchTier.word],
    ]);
    expect(rankCandidates("lavendar", catalogue).map((m) => [m.candidate.scientificName, m.tier, m.edits, m.score])).toEqual([
      ["Santolina chamaecyparissus", MatchTier.typo, 1, 0.3],
      ["Lavandula angustifolia", MatchTier.typo, 1, 0.3],
    ]);
  });

  it("prefers the name's head word when popularity ties: a dog rose is a rose, a rose of Sharon is not", () => {
    expect(order("rose", catalogue).slice(0, 2)).toEqual(["Rosa canina", "Hibiscus syriacus"]);
  });

  it("orders typos by edits before popularity", () => {
    const lilies = [species("Spathiphyllum wallisii", ["peace lily"]), species("Pax popularis", ["peach lolly"], 1000)];
    const ranked = rankCandidates("peace lilly", lilies);
    expect(ranked.map((m) => [m.candidate.scientificName, m.edits])).toEqual([
      ["Spathiphyllum wallisii", 1],
      ["Pax popularis", 2],
    ]);
  });

  it("has a relevance floor: sharing letters is not a match", () => {
    expect(order("mildew", catalogue)).toEqual([]);
    expect(order("peace lilly", catalogue)).toEqual(["Spathiphyllum wallisii"]);
    expect(order("", catalogue)).toEqual([]);
    expect(order("%", catalogue)).toEqual([]);
  });

  it("matches every word in any order, families literally, and short queries only as name starts", () => {
    expect(order("lily peace", catalogue)).toEqual(["Spathiphyllum wallisii"]);
    expect(rankCandidates("rosaceae", catalogue).map((m) => [m.candidate.scientificName, m.tier])).toEqual([
      ["Rosa canina", MatchTier.contains],
    ]);
    // Equal prefix matches: a one-word name ("rosemary") first, then the shorter name.
    expect(order("ro", catalogue)).toEqual(["Salvia rosmarinus", "Rosa canina", "Hibiscus syriacus"]);
    expect(order("os", catalogue)).toEqual([]);
  });
});
