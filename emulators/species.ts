// Reference data shared by all emulators, so one image yields the same species from Plant.id,
// Pl@ntNet and (by name) Trefle, and health assessments draw from one disease list.
//
// Names, authorships, families and common names are real. Identifiers: the GBIF ids of
// Monstera deliciosa, Quercus robur, Helianthus annuus, Solanum lycopersicum, Fagus sylvatica
// and Bellis perennis were checked against public references; every other GBIF, POWO,
// iNaturalist, Trefle and IUCN id is a plausible stand-in. Never look them up on the real
// services. Descriptions are short summaries written for the emulator.

/**
 * 64-bit FNV-1a as 16 hex digits: a synchronous, stable id for static data (Plant.id entity
 * ids, genus ids), so this module needs no async setup.
 */
export function fnv1a64Hex(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, "0");
}

export type Language = "en" | "fr";
export const LANGUAGES: readonly Language[] = ["en", "fr"];

export type ToxicityLevel = "none" | "low" | "medium" | "high";
export type IucnCategory = "LC" | "NT" | "VU" | "EN" | "CR";
/** Plant.id's watering scale: 1 = dry, 2 = medium, 3 = wet. */
export type WateringLevel = 1 | 2 | 3;

export interface SpeciesGrowth {
  /** Trefle scales: 0 (none) … 10 (very high). */
  light: number;
  atmosphericHumidity: number;
  soilHumidity: number;
  phMinimum: number;
  phMaximum: number;
  minimumTemperatureC: number;
  maximumTemperatureC: number | null;
  averageHeightCm: number | null;
  maximumHeightCm: number | null;
  bloomMonths: string[] | null;
  growthHabit: string;
  duration: string[];
  flowerColor: string[] | null;
  foliageColor: string[];
}

export interface Species {
  /** Plant.id-style 16-hex entity id, derived from the scientific name. */
  entityId: string;
  scientificName: string;
  authorship: string;
  scientificNameWithAuthor: string;
  slug: string;
  rank: "species";
  genus: string;
  genusId: number;
  family: string;
  familyCommonName: string;
  taxonomy: { kingdom: string; phylum: string; class: string; order: string; family: string; genus: string };
  commonNames: Record<Language, string[]>;
  synonyms: string[];
  year: number;
  bibliography: string | null;
  gbifId: number;
  powoId: string;
  inaturalistId: number;
  trefleId: number;
  iucn: { id: string; category: IucnCategory } | null;
  description: string;
  wikipediaUrl: string;
  watering: { min: WateringLevel; max: WateringLevel };
  propagationMethods: string[];
  /** Plant.id vocabulary: fruit, leaves, seeds, flowers, stem. */
  edibleParts: string[] | null;
  vegetable: boolean;
  toxicity: ToxicityLevel;
  commonUses: string | null;
  nativeRange: string[];
  growth: SpeciesGrowth;
}

const FAMILIES = {
  Araceae: { order: "Alismatales", class: "Liliopsida", commonName: "Arum family" },
  Asparagaceae: { order: "Asparagales", class: "Liliopsida", commonName: "Asparagus family" },
  Asphodelaceae: { order: "Asparagales", class: "Liliopsida", commonName: "Asphodel family" },
  Orchidaceae: { order: "Asparagales", class: "Liliopsida", commonName: "Orchid family" },
  Arecaceae: { order: "Arecales", class: "Liliopsida", commonName: "Palm family" },
  Marantaceae: { order: "Zingiberales", class: "Liliopsida", commonName: "Prayer-plant family" },
  Strelitziaceae: { order: "Zingiberales", class: "Liliopsida", commonName: "Bird-of-paradise family" },
  Moraceae: { order: "Rosales", class: "Magnoliopsida", commonName: "Mulberry family" },
  Urticaceae: { order: "Rosales", class: "Magnoliopsida", commonName: "Nettle family" },
  Rosaceae: { order: "Rosales", class: "Magnoliopsida", commonName: "Rose family" },
  Crassulaceae: { order: "Saxifragales", class: "Magnoliopsida", commonName: "Stonecrop family" },
  Lamiaceae: { order: "Lamiales", class: "Magnoliopsida", commonName: "Mint family" },
  Solanaceae: { order: "Solanales", class: "Magnoliopsida", commonName: "Potato family" },
  Asteraceae: { order: "Asterales", class: "Magnoliopsida", commonName: "Aster family" },
  Fagaceae: { order: "Fagales", class: "Magnoliopsida", commonName: "Beech family" },
  Sapindaceae: { order: "Sapindales", class: "Magnoliopsida", commonName: "Soapberry family" },
  Piperaceae: { order: "Piperales", class: "Magnoliopsida", commonName: "Pepper family" },
  Cactaceae: { order: "Caryophyllales", class: "Magnoliopsida", commonName: "Cactus family" },
  Hydrangeaceae: { order: "Cornales", class: "Magnoliopsida", commonName: "Hydrangea family" },
  Apocynaceae: { order: "Gentianales", class: "Magnoliopsida", commonName: "Dogbane family" },
  Geraniaceae: { order: "Geraniales", class: "Magnoliopsida", commonName: "Geranium family" },
} as const;

type FamilyName = keyof typeof FAMILIES;

interface SpeciesSeed {
  name: string;
  author: string;
  family: FamilyName;
  en: string[];
  fr: string[];
  gbif: number;
  powo: string;
  inat: number;
  trefle: number;
  year: number;
  bibliography?: string;
  iucn?: IucnCategory;
  synonyms?: string[];
  description: string;
  watering: [WateringLevel, WateringLevel];
  propagation: string[];
  edible?: string[];
  vegetable?: boolean;
  toxicity: ToxicityLevel;
  uses?: string;
  native: string[];
  light: number;
  humidity: number;
  soilHumidity: number;
  ph: [number, number];
  tempC: [number, number | null];
  heightCm: [number | null, number | null];
  habit: string;
  duration?: string[];
  flowers: string[] | null;
  bloom?: string[];
  foliage?: string[];
}

function defineSpecies(seed: SpeciesSeed): Species {
  const family = FAMILIES[seed.family];
  const genus = seed.name.split(" ")[0] as string;
  return {
    entityId: fnv1a64Hex(`plant:${seed.name}`),
    scientificName: seed.name,
    authorship: seed.author,
    scientificNameWithAuthor: `${seed.name} ${seed.author}`,
    slug: seed.name.toLowerCase().replace(/[^a-z]+/g, "-"),
    rank: "species",
    genus,
    genusId: 1000 + (parseInt(fnv1a64Hex(`genus:${genus}`).slice(0, 6), 16) % 9000),
    family: seed.family,
    familyCommonName: family.commonName,
    taxonomy: {
      kingdom: "Plantae",
      phylum: "Tracheophyta",
      class: family.class,
      order: family.order,
      family: seed.family,
      genus,
    },
    commonNames: { en: seed.en, fr: seed.fr },
    synonyms: seed.synonyms ?? [],
    year: seed.year,
    bibliography: seed.bibliography ?? null,
    gbifId: seed.gbif,
    powoId: seed.powo,
    inaturalistId: seed.inat,
    trefleId: seed.trefle,
    iucn: seed.iucn
      ? { id: String(10_000 + (parseInt(fnv1a64Hex(`iucn:${seed.name}`).slice(0, 6), 16) % 190_000)), category: seed.iucn }
      : null,
    description: seed.description,
    wikipediaUrl: `https://en.wikipedia.org/wiki/${seed.name.replace(/ /g, "_")}`,
    watering: { min: seed.watering[0], max: seed.watering[1] },
    propagationMethods: seed.propagation,
    edibleParts: seed.edible ?? null,
    vegetable: seed.vegetable ?? false,
    toxicity: seed.toxicity,
    commonUses: seed.uses ?? null,
    nativeRange: seed.native,
    growth: {
      light: seed.light,
      atmosphericHumidity: seed.humidity,
      soilHumidity: seed.soilHumidity,
      phMinimum: seed.ph[0],
      phMaximum: seed.ph[1],
      minimumTemperatureC: seed.tempC[0],
      maximumTemperatureC: seed.tempC[1],
      averageHeightCm: seed.heightCm[0],
      maximumHeightCm: seed.heightCm[1],
      bloomMonths: seed.bloom ?? null,
      growthHabit: seed.habit,
      duration: seed.duration ?? ["perennial"],
      flowerColor: seed.flowers,
      foliageColor: seed.foliage ?? ["green"],
    },
  };
}

const SUMMER = ["jun", "jul", "aug"];
const SPRING = ["apr", "may", "jun"];

/** Ordered roughly by popularity; Trefle's default list order follows it. */
export const SPECIES: readonly Species[] = [
  defineSpecies({
    name: "Monstera deliciosa", author: "Liebm.", family: "Araceae",
    en: ["Swiss cheese plant", "split-leaf philodendron", "ceriman"], fr: ["monstera délicieuse", "faux philodendron"],
    gbif: 2868241, powo: "88383-1", inat: 49372, trefle: 182512, year: 1849,
    bibliography: "Vidensk. Meddel. Naturhist. Foren. Kjøbenhavn 1849: 19 (1849)",
    synonyms: ["Philodendron pertusum", "Monstera lennea"],
    description: "Monstera deliciosa is an evergreen climbing aroid from the rainforests of southern Mexico and Central America. Its large leaves develop holes and splits as they mature, and it is one of the most widely grown houseplants.",
    watering: [2, 2], propagation: ["cuttings", "air layering", "seeds"], edible: ["fruit"], toxicity: "medium",
    uses: "Grown as an ornamental foliage plant indoors; the ripe fruit is eaten in its native range.",
    native: ["Mexico", "Guatemala", "Honduras", "Costa Rica", "Panama"],
    light: 6, humidity: 8, soilHumidity: 6, ph: [5.5, 7], tempC: [10, 32], heightCm: [300, 2000], habit: "Vine",
    flowers: ["white"],
  }),
  defineSpecies({
    name: "Monstera adansonii", author: "Schott", family: "Araceae",
    en: ["Swiss cheese vine", "Adanson's monstera", "five holes plant"], fr: ["monstera d'Adanson"],
    gbif: 2868245, powo: "88346-1", inat: 362543, trefle: 182498, year: 1830,
    synonyms: ["Monstera pertusa"],
    description: "Monstera adansonii is a climbing aroid from Central and South America whose thin leaves are perforated by oval holes. It stays smaller than Monstera deliciosa and is popular in hanging baskets.",
    watering: [2, 2], propagation: ["cuttings", "layering"], toxicity: "medium",
    native: ["Costa Rica", "Colombia", "Venezuela", "Brazil", "Peru"],
    light: 6, humidity: 8, soilHumidity: 6, ph: [5.5, 7], tempC: [12, 30], heightCm: [200, 800], habit: "Vine",
    flowers: ["white"],
  }),
  defineSpecies({
    name: "Epipremnum aureum", author: "(Linden & André) G.S.Bunting", family: "Araceae",
    en: ["golden pothos", "devil's ivy", "money plant"], fr: ["pothos doré", "lierre du diable"],
    gbif: 2868323, powo: "87425-1", inat: 120962, trefle: 178233, year: 1964,
    synonyms: ["Scindapsus aureus", "Pothos aureus"],
    description: "Epipremnum aureum is a vigorous evergreen vine native to Mo'orea in French Polynesia. Its heart-shaped, often variegated leaves and tolerance of low light make it one of the easiest houseplants.",
    watering: [1, 2], propagation: ["cuttings", "layering"], toxicity: "medium",
    uses: "Trailing houseplant for shelves and hanging baskets.",
    native: ["Society Islands"],
    light: 4, humidity: 6, soilHumidity: 5, ph: [6, 6.5], tempC: [10, 32], heightCm: [200, 2000], habit: "Vine",
    flowers: null,
  }),
  defineSpecies({
    name: "Philodendron hederaceum", author: "(Jacq.) Schott", family: "Araceae",
    en: ["heartleaf philodendron", "sweetheart plant"], fr: ["philodendron grimpant", "philodendron cœur"],
    gbif: 2871193, powo: "89342-1", inat: 82657, trefle: 190213, year: 1829,
    synonyms: ["Philodendron scandens", "Philodendron oxycardium"],
    description: "Philodendron hederaceum is a climbing aroid from tropical America with glossy, heart-shaped leaves. It trails or climbs readily and tolerates lower light than most houseplants.",
    watering: [2, 2], propagation: ["cuttings"], toxicity: "medium",
    native: ["Mexico", "Brazil", "Colombia", "Caribbean"],
    light: 4, humidity: 7, soilHumidity: 6, ph: [5.5, 7], tempC: [13, 30], heightCm: [100, 600], habit: "Vine",
    flowers: null,
  }),
  defineSpecies({
    name: "Zamioculcas zamiifolia", author: "(Lodd.) Engl.", family: "Araceae",
    en: ["ZZ plant", "Zanzibar gem", "eternity plant"], fr: ["plante ZZ", "zamioculcas"],
    gbif: 2872549, powo: "90256-1", inat: 167837, trefle: 197521, year: 1905,
    description: "Zamioculcas zamiifolia is a drought-tolerant aroid from eastern Africa that stores water in thick rhizomes. Its glossy pinnate leaves make it a popular low-maintenance houseplant.",
    watering: [1, 1], propagation: ["division", "leaf cuttings"], toxicity: "medium",
    native: ["Kenya", "Tanzania", "Mozambique", "Zimbabwe"],
    light: 4, humidity: 4, soilHumidity: 3, ph: [6, 7], tempC: [12, 32], heightCm: [60, 100], habit: "Forb/herb",
    flowers: null,
  }),
  defineSpecies({
    name: "Spathiphyllum wallisii", author: "Regel", family: "Araceae",
    en: ["peace lily", "white sails"], fr: ["fleur de lune", "spathiphyllum"],
    gbif: 2870010, powo: "89979-1", inat: 167832, trefle: 194840, year: 1877,
    description: "Spathiphyllum wallisii is a clump-forming aroid from Colombia and Venezuela with dark green leaves and white spathes. It wilts visibly when dry and recovers quickly after watering.",
    watering: [2, 3], propagation: ["division"], toxicity: "medium",
    native: ["Colombia", "Venezuela"],
    light: 4, humidity: 8, soilHumidity: 7, ph: [5.8, 6.5], tempC: [13, 30], heightCm: [40, 65], habit: "Forb/herb",
    flowers: ["white"], bloom: SPRING,
  }),
  defineSpecies({
    name: "Anthurium andraeanum", author: "Linden ex André", family: "Araceae",
    en: ["flamingo flower", "painter's palette", "laceleaf"], fr: ["anthurium", "langue de feu"],
    gbif: 2873004, powo: "86057-1", inat: 120980, trefle: 176482, year: 1877,
    description: "Anthurium andraeanum is an epiphytic aroid from Colombia and Ecuador grown for its glossy red, pink or white spathes. It needs warmth, bright indirect light and an airy substrate.",
    watering: [2, 2], propagation: ["division", "cuttings", "seeds"], toxicity: "medium",
    native: ["Colombia", "Ecuador"],
    light: 6, humidity: 8, soilHumidity: 6, ph: [5.5, 6.5], tempC: [15, 30], heightCm: [40, 60], habit: "Forb/herb",
    flowers: ["red"], foliage: ["green"],
  }),
  defineSpecies({
    name: "Dracaena trifasciata", author: "(Prain) Mabb.", family: "Asparagaceae",
    en: ["snake plant", "mother-in-law's tongue"], fr: ["langue de belle-mère", "sansevière"],
    gbif: 7941226, powo: "77171559-1", inat: 367356, trefle: 265412, year: 2017,
    synonyms: ["Sansevieria trifasciata", "Sansevieria laurentii"],
    description: "Dracaena trifasciata, long known as Sansevieria trifasciata, is a succulent from tropical West Africa with stiff, upright, banded leaves. It tolerates drought and low light and is often recommended to beginners.",
    watering: [1, 1], propagation: ["division", "leaf cuttings"], toxicity: "low",
    uses: "Architectural houseplant; leaf fibres were once used for bowstrings.",
    native: ["Nigeria", "Cameroon", "Democratic Republic of the Congo"],
    light: 5, humidity: 3, soilHumidity: 2, ph: [4.5, 7], tempC: [10, 35], heightCm: [70, 120], habit: "Forb/herb",
    flowers: ["white"],
  }),
  defineSpecies({
    name: "Chlorophytum comosum", author: "(Thunb.) Jacques", family: "Asparagaceae",
    en: ["spider plant", "airplane plant", "ribbon plant"], fr: ["plante araignée", "phalangère"],
    gbif: 2768927, powo: "532349-1", inat: 53734, trefle: 125312, year: 1862,
    description: "Chlorophytum comosum is a rosette-forming perennial from southern Africa with arching, often striped leaves. It produces plantlets on long runners that root easily.",
    watering: [2, 2], propagation: ["plantlets", "division"], toxicity: "none",
    native: ["South Africa", "Mozambique", "Zimbabwe"],
    light: 6, humidity: 5, soilHumidity: 5, ph: [6, 7.2], tempC: [7, 32], heightCm: [30, 60], habit: "Forb/herb",
    flowers: ["white"], bloom: SUMMER,
  }),
  defineSpecies({
    name: "Dracaena fragrans", author: "(L.) Ker Gawl.", family: "Asparagaceae",
    en: ["corn plant", "cornstalk dracaena"], fr: ["dragonnier parfumé", "dracaena massangeana"],
    gbif: 2778357, powo: "552357-1", inat: 131466, trefle: 140524, year: 1808,
    description: "Dracaena fragrans is a slow-growing shrub from tropical Africa with long, strap-shaped leaves on cane-like stems. Its night-scented flowers are rare indoors.",
    watering: [1, 2], propagation: ["cuttings", "air layering"], toxicity: "low",
    native: ["Tanzania", "Uganda", "Ethiopia", "Sudan"],
    light: 5, humidity: 5, soilHumidity: 4, ph: [6, 6.5], tempC: [12, 30], heightCm: [150, 1500], habit: "Shrub",
    flowers: ["white"],
  }),
  defineSpecies({
    name: "Ficus lyrata", author: "Warb.", family: "Moraceae",
    en: ["fiddle-leaf fig"], fr: ["figuier lyre"],
    gbif: 5361891, powo: "853997-1", inat: 166996, trefle: 143856, year: 1894,
    description: "Ficus lyrata is a fig from the lowland rainforests of western and central Africa. Its large, violin-shaped leaves made it a fashionable indoor tree that dislikes drafts and being moved.",
    watering: [2, 2], propagation: ["cuttings", "air layering"], toxicity: "low",
    native: ["Cameroon", "Sierra Leone", "Gabon"],
    light: 7, humidity: 6, soilHumidity: 5, ph: [6, 7], tempC: [12, 32], heightCm: [300, 1500], habit: "Tree",
    flowers: null,
  }),
  defineSpecies({
    name: "Ficus elastica", author: "Roxb. ex Hornem.", family: "Moraceae",
    en: ["rubber plant", "rubber fig", "Indian rubber bush"], fr: ["caoutchouc", "figuier élastique"],
    gbif: 5361870, powo: "854009-1", inat: 121848, trefle: 143770, year: 1819,
    description: "Ficus elastica is a large fig from north-eastern India and south-east Asia with thick, glossy leaves. Young plants are grown indoors, where they tolerate moderate light.",
    watering: [2, 2], propagation: ["cuttings", "air layering"], toxicity: "low",
    uses: "Indoor tree; historically tapped for latex.",
    native: ["India", "Myanmar", "Malaysia", "Indonesia"],
    light: 6, humidity: 6, soilHumidity: 5, ph: [5.5, 7], tempC: [12, 32], heightCm: [300, 3000], habit: "Tree",
    flowers: null, foliage: ["green", "red"],
  }),
  defineSpecies({
    name: "Ficus benjamina", author: "L.", family: "Moraceae",
    en: ["weeping fig", "benjamin fig"], fr: ["figuier pleureur", "ficus benjamin"],
    gbif: 5361941, powo: "853987-1", inat: 130870, trefle: 143626, year: 1767,
    bibliography: "Mant. Pl. 1: 129 (1767)",
    description: "Ficus benjamina is a tropical fig from south and south-east Asia and northern Australia with drooping branches and small pointed leaves. Indoors it sheds leaves readily after changes of light or temperature.",
    watering: [2, 2], propagation: ["cuttings", "air layering"], toxicity: "low",
    native: ["India", "Thailand", "Indonesia", "Australia"],
    light: 7, humidity: 6, soilHumidity: 5, ph: [6, 7], tempC: [13, 32], heightCm: [200, 3000], habit: "Tree",
    flowers: null,
  }),
  defineSpecies({
    name: "Aloe vera", author: "(L.) Burm.f.", family: "Asphodelaceae",
    en: ["aloe vera", "true aloe", "medicinal aloe"], fr: ["aloès", "aloe vera"],
    gbif: 2777724, powo: "530934-1", inat: 75413, trefle: 121836, year: 1768,
    synonyms: ["Aloe barbadensis"],
    description: "Aloe vera is a stemless succulent probably originating from the Arabian Peninsula, grown worldwide for the gel in its thick leaves. It needs bright light and very little water.",
    watering: [1, 1], propagation: ["offsets", "division"], edible: ["leaves"], toxicity: "low",
    uses: "Leaf gel used in cosmetics and for minor burns.",
    native: ["Arabian Peninsula"],
    light: 9, humidity: 2, soilHumidity: 2, ph: [7, 8.5], tempC: [7, 35], heightCm: [40, 100], habit: "Forb/herb",
    flowers: ["yellow"], bloom: SPRING,
  }),
  defineSpecies({
    name: "Crassula ovata", author: "(Mill.) Druce", family: "Crassulaceae",
    en: ["jade plant", "money tree", "lucky plant"], fr: ["arbre de jade", "crassula"],
    gbif: 3085475, powo: "271659-1", inat: 125309, trefle: 131840, year: 1917,
    synonyms: ["Crassula argentea", "Crassula portulacea"],
    description: "Crassula ovata is a branching succulent shrub from South Africa and Mozambique with fleshy, oval leaves. It is long-lived and forms a small tree in pots.",
    watering: [1, 1], propagation: ["cuttings", "leaf cuttings"], toxicity: "low",
    native: ["South Africa", "Mozambique"],
    light: 8, humidity: 2, soilHumidity: 2, ph: [6, 7.5], tempC: [5, 35], heightCm: [60, 250], habit: "Shrub",
    flowers: ["white", "pink"], bloom: ["nov", "dec", "jan"],
  }),
  defineSpecies({
    name: "Echeveria elegans", author: "Rose", family: "Crassulaceae",
    en: ["Mexican snowball", "white Mexican rose"], fr: ["échévéria élégante"],
    gbif: 3085890, powo: "273165-1", inat: 167784, trefle: 138764, year: 1905,
    description: "Echeveria elegans is a rosette-forming succulent from central Mexico with pale blue-green, waxy leaves. It offsets freely and needs full sun to keep a compact shape.",
    watering: [1, 1], propagation: ["offsets", "leaf cuttings"], toxicity: "none",
    native: ["Mexico"],
    light: 9, humidity: 2, soilHumidity: 2, ph: [6, 7], tempC: [3, 35], heightCm: [5, 15], habit: "Forb/herb",
    flowers: ["pink", "yellow"], bloom: ["mar", "apr", "may"], foliage: ["grey-green"],
  }),
  defineSpecies({
    name: "Rosa canina", author: "L.", family: "Rosaceae",
    en: ["dog rose", "wild briar"], fr: ["églantier", "rosier des chiens"],
    gbif: 8395064, powo: "731168-1", inat: 52743, trefle: 228431, year: 1753,
    bibliography: "Sp. Pl.: 491 (1753)",
    description: "Rosa canina is a scrambling wild rose of Europe, north-west Africa and western Asia. Its pale pink flowers are followed by red hips rich in vitamin C.",
    watering: [2, 2], propagation: ["seeds", "cuttings"], edible: ["fruit", "flowers"], toxicity: "none",
    uses: "Rose hips are used for syrups, teas and jams; widely used as a rootstock.",
    native: ["Europe", "North Africa", "Western Asia"],
    light: 8, humidity: 5, soilHumidity: 5, ph: [5.5, 8], tempC: [-25, 35], heightCm: [200, 500], habit: "Shrub",
    flowers: ["pink", "white"], bloom: SPRING,
  }),
  defineSpecies({
    name: "Malus domestica", author: "(Suckow) Borkh.", family: "Rosaceae",
    en: ["apple", "orchard apple"], fr: ["pommier domestique", "pommier"],
    gbif: 3001093, powo: "726282-1", inat: 54500, trefle: 214378, year: 1803,
    synonyms: ["Pyrus malus", "Malus pumila"],
    description: "Malus domestica is the cultivated apple, a deciduous tree descended mainly from the wild Malus sieversii of Central Asia. Thousands of cultivars are grown for their fruit in temperate climates.",
    watering: [2, 2], propagation: ["grafting", "budding"], edible: ["fruit"], toxicity: "low",
    uses: "Fruit eaten fresh, cooked, juiced and fermented into cider.",
    native: ["Kazakhstan", "Kyrgyzstan"],
    light: 8, humidity: 5, soilHumidity: 5, ph: [6, 7], tempC: [-30, 35], heightCm: [400, 1200], habit: "Tree",
    flowers: ["white", "pink"], bloom: ["apr", "may"], duration: ["perennial"],
  }),
  defineSpecies({
    name: "Prunus avium", author: "(L.) L.", family: "Rosaceae",
    en: ["wild cherry", "sweet cherry", "gean"], fr: ["merisier", "cerisier des oiseaux"],
    gbif: 3021850, powo: "729589-1", inat: 55801, trefle: 222987, year: 1755, iucn: "LC",
    description: "Prunus avium is a deciduous tree of Europe, western Asia and north-west Africa, the ancestor of most sweet cherry cultivars. White flowers appear in spring before dark red fruits.",
    watering: [2, 2], propagation: ["grafting", "seeds"], edible: ["fruit"], toxicity: "medium",
    uses: "Fruit; valued timber; ornamental in parks.",
    native: ["Europe", "Western Asia", "North Africa"],
    light: 8, humidity: 5, soilHumidity: 5, ph: [6, 7.5], tempC: [-29, 35], heightCm: [1500, 3200], habit: "Tree",
    flowers: ["white"], bloom: ["apr", "may"],
  }),
  defineSpecies({
    name: "Lavandula angustifolia", author: "Mill.", family: "Lamiaceae",
    en: ["English lavender", "true lavender", "common lavender"], fr: ["lavande vraie", "lavande officinale"],
    gbif: 2927303, powo: "449002-1", inat: 63111, trefle: 167402, year: 1768,
    synonyms: ["Lavandula officinalis", "Lavandula spica"],
    description: "Lavandula angustifolia is an aromatic evergreen subshrub from the western Mediterranean with grey-green leaves and spikes of purple flowers. It thrives in sun and poor, well-drained soil.",
    watering: [1, 1], propagation: ["cuttings", "seeds"], edible: ["flowers"], toxicity: "low",
    uses: "Essential oil for perfumery; dried flowers; culinary flavouring.",
    native: ["Spain", "France", "Italy"],
    light: 9, humidity: 3, soilHumidity: 3, ph: [6.5, 8], tempC: [-20, 35], heightCm: [50, 100], habit: "Subshrub",
    flowers: ["purple", "blue"], bloom: SUMMER, foliage: ["grey-green"],
  }),
  defineSpecies({
    name: "Ocimum basilicum", author: "L.", family: "Lamiaceae",
    en: ["basil", "sweet basil"], fr: ["basilic", "basilic commun"],
    gbif: 2927096, powo: "451225-1", inat: 59575, trefle: 175186, year: 1753,
    bibliography: "Sp. Pl.: 597 (1753)",
    description: "Ocimum basilicum is a tender aromatic herb, probably from tropical Asia and Africa, grown for its fragrant leaves. It needs warmth and regular watering and is usually grown as an annual.",
    watering: [2, 2], propagation: ["seeds", "cuttings"], edible: ["leaves", "flowers", "seeds"], vegetable: true, toxicity: "none",
    uses: "Culinary herb, especially in Italian and south-east Asian cooking.",
    native: ["India", "Tropical Africa"],
    light: 8, humidity: 5, soilHumidity: 6, ph: [6, 7.5], tempC: [10, 35], heightCm: [30, 60], habit: "Forb/herb",
    duration: ["annual"], flowers: ["white", "purple"], bloom: SUMMER,
  }),
  defineSpecies({
    name: "Salvia rosmarinus", author: "Spenn.", family: "Lamiaceae",
    en: ["rosemary"], fr: ["romarin"],
    gbif: 8358680, powo: "457138-1", inat: 636795, trefle: 232810, year: 1835,
    synonyms: ["Rosmarinus officinalis"],
    description: "Salvia rosmarinus, long known as Rosmarinus officinalis, is an aromatic evergreen shrub of the Mediterranean with needle-like leaves. It prefers sun, lean soil and dry roots.",
    watering: [1, 1], propagation: ["cuttings", "layering"], edible: ["leaves", "flowers"], toxicity: "none",
    uses: "Culinary herb; essential oil.",
    native: ["Spain", "Portugal", "France", "Italy", "Greece", "Morocco"],
    light: 9, humidity: 3, soilHumidity: 3, ph: [6, 7.5], tempC: [-10, 35], heightCm: [80, 200], habit: "Shrub",
    flowers: ["blue", "purple"], bloom: ["mar", "apr", "may"],
  }),
  defineSpecies({
    name: "Mentha spicata", author: "L.", family: "Lamiaceae",
    en: ["spearmint", "garden mint"], fr: ["menthe verte", "menthe en épi"],
    gbif: 2927201, powo: "450969-1", inat: 53981, trefle: 169882, year: 1753,
    bibliography: "Sp. Pl.: 576 (1753)",
    description: "Mentha spicata is a spreading aromatic perennial native to Europe and southern Asia. It grows from vigorous rhizomes and is best kept in containers.",
    watering: [2, 3], propagation: ["division", "cuttings", "runners"], edible: ["leaves"], vegetable: true, toxicity: "none",
    uses: "Culinary herb and tea; flavouring.",
    native: ["Europe", "Western Asia"],
    light: 7, humidity: 6, soilHumidity: 7, ph: [6, 7.5], tempC: [-20, 32], heightCm: [30, 100], habit: "Forb/herb",
    flowers: ["pink", "white"], bloom: SUMMER,
  }),
  defineSpecies({
    name: "Solanum lycopersicum", author: "L.", family: "Solanaceae",
    en: ["tomato", "garden tomato"], fr: ["tomate"],
    gbif: 2930137, powo: "316947-2", inat: 55830, trefle: 240165, year: 1753,
    bibliography: "Sp. Pl.: 185 (1753)",
    synonyms: ["Lycopersicon esculentum"],
    description: "Solanum lycopersicum is the tomato, a short-lived perennial from western South America grown as an annual for its fruit. It needs full sun, warmth and even watering.",
    watering: [2, 3], propagation: ["seeds", "cuttings"], edible: ["fruit"], vegetable: true, toxicity: "low",
    uses: "One of the most widely grown fruit vegetables.",
    native: ["Peru", "Ecuador"],
    light: 9, humidity: 5, soilHumidity: 6, ph: [5.5, 7.5], tempC: [10, 35], heightCm: [100, 300], habit: "Forb/herb",
    duration: ["annual", "perennial"], flowers: ["yellow"], bloom: SUMMER,
  }),
  defineSpecies({
    name: "Capsicum annuum", author: "L.", family: "Solanaceae",
    en: ["chili pepper", "bell pepper", "paprika"], fr: ["piment", "poivron"],
    gbif: 2932944, powo: "316423-1", inat: 60392, trefle: 127829, year: 1753,
    bibliography: "Sp. Pl.: 188 (1753)",
    description: "Capsicum annuum is a pepper domesticated in Mexico, grown for sweet and hot fruits. It needs a long warm season and regular watering.",
    watering: [2, 2], propagation: ["seeds"], edible: ["fruit"], vegetable: true, toxicity: "low",
    uses: "Vegetable and spice.",
    native: ["Mexico", "Central America"],
    light: 9, humidity: 5, soilHumidity: 6, ph: [6, 7], tempC: [12, 35], heightCm: [50, 100], habit: "Forb/herb",
    duration: ["annual"], flowers: ["white"], bloom: SUMMER,
  }),
  defineSpecies({
    name: "Helianthus annuus", author: "L.", family: "Asteraceae",
    en: ["common sunflower", "sunflower"], fr: ["tournesol", "grand soleil"],
    gbif: 9206251, powo: "119003-2", inat: 57983, trefle: 157554, year: 1753,
    bibliography: "Sp. Pl.: 904 (1753)",
    description: "Helianthus annuus is a tall annual from North America with large flower heads that track the sun while young. It is grown for seeds, oil and ornament.",
    watering: [2, 2], propagation: ["seeds"], edible: ["seeds"], toxicity: "none",
    uses: "Oilseed crop; edible seeds; cut flower.",
    native: ["United States", "Mexico", "Canada"],
    light: 10, humidity: 4, soilHumidity: 5, ph: [6, 7.5], tempC: [5, 35], heightCm: [150, 300], habit: "Forb/herb",
    duration: ["annual"], flowers: ["yellow"], bloom: ["jul", "aug", "sep"],
  }),
  defineSpecies({
    name: "Taraxacum officinale", author: "F.H.Wigg.", family: "Asteraceae",
    en: ["common dandelion", "dandelion"], fr: ["pissenlit", "dent-de-lion"],
    gbif: 5394567, powo: "30040549-2", inat: 47602, trefle: 246543, year: 1780,
    description: "Taraxacum officinale is a perennial with a deep taproot and toothed leaves in a rosette, found across temperate regions. Its yellow flower heads turn into spherical seed clocks.",
    watering: [2, 2], propagation: ["seeds", "root cuttings"], edible: ["leaves", "flowers", "roots"], vegetable: true, toxicity: "none",
    uses: "Leaves as salad greens; roots roasted as a coffee substitute.",
    native: ["Europe", "Asia"],
    light: 8, humidity: 5, soilHumidity: 5, ph: [5.5, 8], tempC: [-30, 35], heightCm: [10, 45], habit: "Forb/herb",
    flowers: ["yellow"], bloom: ["apr", "may", "jun", "jul", "aug", "sep"],
  }),
  defineSpecies({
    name: "Bellis perennis", author: "L.", family: "Asteraceae",
    en: ["common daisy", "lawn daisy", "English daisy"], fr: ["pâquerette", "petite marguerite"],
    gbif: 3117424, powo: "175949-1", inat: 53888, trefle: 120125, year: 1753,
    bibliography: "Sp. Pl.: 886 (1753)",
    description: "Bellis perennis is a small perennial of European lawns and meadows with white-rayed, yellow-centred flower heads. It flowers for most of the year in mild climates.",
    watering: [2, 2], propagation: ["seeds", "division"], edible: ["leaves", "flowers"], toxicity: "none",
    native: ["Europe", "Western Asia"],
    light: 7, humidity: 6, soilHumidity: 6, ph: [5.5, 7.5], tempC: [-25, 30], heightCm: [5, 15], habit: "Forb/herb",
    flowers: ["white", "pink"], bloom: ["mar", "apr", "may", "jun", "jul", "aug", "sep", "oct"],
  }),
  defineSpecies({
    name: "Leucanthemum vulgare", author: "Lam.", family: "Asteraceae",
    en: ["oxeye daisy", "dog daisy"], fr: ["marguerite commune", "grande marguerite"],
    gbif: 3117050, powo: "250149-1", inat: 55745, trefle: 165683, year: 1779,
    synonyms: ["Chrysanthemum leucanthemum"],
    description: "Leucanthemum vulgare is a meadow perennial of Europe and temperate Asia with large white daisies on tall stems. It has naturalised widely and is invasive in some regions.",
    watering: [2, 2], propagation: ["seeds", "division"], edible: ["leaves"], toxicity: "low",
    native: ["Europe", "Western Asia"],
    light: 9, humidity: 5, soilHumidity: 5, ph: [5.5, 7.5], tempC: [-30, 30], heightCm: [30, 90], habit: "Forb/herb",
    flowers: ["white"], bloom: ["may", "jun", "jul", "aug"],
  }),
  defineSpecies({
    name: "Quercus robur", author: "L.", family: "Fagaceae",
    en: ["pedunculate oak", "English oak", "common oak"], fr: ["chêne pédonculé", "chêne commun"],
    gbif: 2878688, powo: "296525-1", inat: 56133, trefle: 224878, year: 1753, iucn: "LC",
    bibliography: "Sp. Pl.: 996 (1753)",
    description: "Quercus robur is a long-lived deciduous oak native to most of Europe, with lobed leaves on short stalks and acorns on long stalks. Old trees support an exceptional diversity of wildlife.",
    watering: [2, 2], propagation: ["seeds"], toxicity: "medium",
    uses: "Timber, barrels, tannins; landscape tree.",
    native: ["Europe", "Caucasus"],
    light: 8, humidity: 5, soilHumidity: 6, ph: [4.5, 7.5], tempC: [-35, 35], heightCm: [2500, 4000], habit: "Tree",
    flowers: ["green"], bloom: ["apr", "may"],
  }),
  defineSpecies({
    name: "Fagus sylvatica", author: "L.", family: "Fagaceae",
    en: ["European beech", "common beech"], fr: ["hêtre commun", "fayard"],
    gbif: 2882316, powo: "295537-1", inat: 56131, trefle: 141948, year: 1753, iucn: "LC",
    bibliography: "Sp. Pl.: 998 (1753)",
    description: "Fagus sylvatica is a large deciduous tree of European forests with smooth grey bark and glossy oval leaves. It tolerates shade and is often clipped into hedges that keep their dead leaves in winter.",
    watering: [2, 2], propagation: ["seeds", "grafting"], edible: ["seeds"], toxicity: "low",
    native: ["Europe"],
    light: 5, humidity: 6, soilHumidity: 5, ph: [5, 8], tempC: [-30, 32], heightCm: [2500, 5000], habit: "Tree",
    flowers: ["green"], bloom: ["apr", "may"],
  }),
  defineSpecies({
    name: "Acer palmatum", author: "Thunb.", family: "Sapindaceae",
    en: ["Japanese maple", "palmate maple"], fr: ["érable du Japon"],
    gbif: 3189834, powo: "781554-1", inat: 54765, trefle: 101523, year: 1784, iucn: "LC",
    description: "Acer palmatum is a small deciduous tree from Japan, Korea and China with deeply lobed leaves that colour brilliantly in autumn. Hundreds of cultivars differ in leaf shape and colour.",
    watering: [2, 2], propagation: ["grafting", "seeds", "cuttings"], toxicity: "none",
    native: ["Japan", "Korea", "China"],
    light: 6, humidity: 6, soilHumidity: 6, ph: [5.5, 6.5], tempC: [-25, 32], heightCm: [400, 1000], habit: "Tree",
    flowers: ["red", "purple"], bloom: ["apr", "may"], foliage: ["green", "red"],
  }),
  defineSpecies({
    name: "Phalaenopsis amabilis", author: "(L.) Blume", family: "Orchidaceae",
    en: ["moon orchid", "moth orchid"], fr: ["orchidée papillon", "phalaenopsis"],
    gbif: 2811283, powo: "651397-1", inat: 119383, trefle: 217345, year: 1825,
    description: "Phalaenopsis amabilis is an epiphytic orchid from south-east Asia and northern Australia with broad leaves and long sprays of white flowers. Its hybrids are the most common indoor orchids.",
    watering: [2, 2], propagation: ["keikis", "division"], toxicity: "none",
    native: ["Indonesia", "Philippines", "Malaysia", "Australia"],
    light: 5, humidity: 7, soilHumidity: 5, ph: [5.5, 6.5], tempC: [16, 32], heightCm: [30, 60], habit: "Forb/herb",
    flowers: ["white"], bloom: ["jan", "feb", "mar", "apr"],
  }),
  defineSpecies({
    name: "Dypsis lutescens", author: "(H.Wendl.) Beentje & J.Dransf.", family: "Arecaceae",
    en: ["areca palm", "golden cane palm", "butterfly palm"], fr: ["palmier areca", "palmier doré"],
    gbif: 2736182, powo: "664546-1", inat: 182736, trefle: 139281, year: 1995,
    synonyms: ["Chrysalidocarpus lutescens"],
    description: "Dypsis lutescens is a clustering palm from Madagascar with arching, feathery fronds on yellowish stems. Indoors it needs bright light and steady moisture.",
    watering: [2, 2], propagation: ["seeds", "division"], toxicity: "none",
    native: ["Madagascar"],
    light: 7, humidity: 7, soilHumidity: 6, ph: [6, 7.5], tempC: [13, 35], heightCm: [180, 900], habit: "Tree",
    flowers: ["yellow"],
  }),
  defineSpecies({
    name: "Maranta leuconeura", author: "E.Morren", family: "Marantaceae",
    en: ["prayer plant", "herringbone plant"], fr: ["plante qui prie", "maranta"],
    gbif: 2763043, powo: "797061-1", inat: 167864, trefle: 209487, year: 1874,
    description: "Maranta leuconeura is a low, spreading perennial from Brazilian rainforests with patterned leaves that fold upward at night. It needs humidity and soft, evenly moist soil.",
    watering: [2, 3], propagation: ["division", "cuttings"], toxicity: "none",
    native: ["Brazil"],
    light: 4, humidity: 8, soilHumidity: 7, ph: [5.5, 6.5], tempC: [15, 30], heightCm: [20, 35], habit: "Forb/herb",
    flowers: ["white"], foliage: ["green", "red"],
  }),
  defineSpecies({
    name: "Pilea peperomioides", author: "Diels", family: "Urticaceae",
    en: ["Chinese money plant", "pancake plant", "UFO plant"], fr: ["plante à monnaie chinoise", "pilea"],
    gbif: 5362019, powo: "854889-1", inat: 167875, trefle: 219016, year: 1912,
    description: "Pilea peperomioides is a small perennial from Yunnan and Sichuan with round, shield-shaped leaves on long stalks. It spread as a houseplant through cuttings passed between friends.",
    watering: [2, 2], propagation: ["offsets", "cuttings"], toxicity: "none",
    native: ["China"],
    light: 6, humidity: 5, soilHumidity: 5, ph: [6, 7], tempC: [10, 30], heightCm: [20, 40], habit: "Forb/herb",
    flowers: null,
  }),
  defineSpecies({
    name: "Urtica dioica", author: "L.", family: "Urticaceae",
    en: ["stinging nettle", "common nettle"], fr: ["ortie dioïque", "grande ortie"],
    gbif: 5361866, powo: "855151-1", inat: 54838, trefle: 247887, year: 1753, iucn: "LC",
    bibliography: "Sp. Pl.: 984 (1753)",
    description: "Urtica dioica is a rhizomatous perennial of nitrogen-rich ground across temperate regions, covered with stinging hairs. Young leaves are edible once cooked.",
    watering: [2, 3], propagation: ["seeds", "division"], edible: ["leaves"], vegetable: true, toxicity: "low",
    uses: "Cooked greens, tea, fibre, and a larval food plant for many butterflies.",
    native: ["Europe", "Asia", "North Africa", "North America"],
    light: 7, humidity: 6, soilHumidity: 7, ph: [5.5, 7.5], tempC: [-30, 30], heightCm: [50, 200], habit: "Forb/herb",
    flowers: ["green"], bloom: SUMMER,
  }),
  defineSpecies({
    name: "Peperomia obtusifolia", author: "(L.) A.Dietr.", family: "Piperaceae",
    en: ["baby rubber plant", "pepper face"], fr: ["pépéromia", "peperomia à feuilles obtuses"],
    gbif: 3086460, powo: "681217-1", inat: 167858, trefle: 216001, year: 1831,
    description: "Peperomia obtusifolia is a compact, semi-succulent perennial from tropical America with thick, glossy, rounded leaves. It stores water in its leaves and rots if kept wet.",
    watering: [1, 2], propagation: ["cuttings", "leaf cuttings"], toxicity: "none",
    native: ["Mexico", "Caribbean", "Florida", "Venezuela"],
    light: 5, humidity: 5, soilHumidity: 4, ph: [6, 6.5], tempC: [13, 30], heightCm: [20, 30], habit: "Forb/herb",
    flowers: ["green"],
  }),
  defineSpecies({
    name: "Schlumbergera truncata", author: "(Haw.) Moran", family: "Cactaceae",
    en: ["Christmas cactus", "Thanksgiving cactus", "holiday cactus"], fr: ["cactus de Noël", "schlumbergera"],
    gbif: 3084530, powo: "135856-1", inat: 128542, trefle: 234123, year: 1953,
    synonyms: ["Zygocactus truncatus"],
    description: "Schlumbergera truncata is an epiphytic cactus from the coastal mountains of south-eastern Brazil with flat, toothed stem segments. Short days trigger its flowers in late autumn.",
    watering: [2, 2], propagation: ["cuttings"], toxicity: "none",
    native: ["Brazil"],
    light: 5, humidity: 6, soilHumidity: 5, ph: [5.5, 6.5], tempC: [10, 30], heightCm: [20, 40], habit: "Subshrub",
    flowers: ["pink", "red"], bloom: ["nov", "dec"],
  }),
  defineSpecies({
    name: "Strelitzia reginae", author: "Banks", family: "Strelitziaceae",
    en: ["bird of paradise", "crane flower"], fr: ["oiseau de paradis", "strelitzia"],
    gbif: 2759910, powo: "798412-1", inat: 51802, trefle: 244657, year: 1788,
    description: "Strelitzia reginae is a clump-forming perennial from South Africa with paddle-shaped leaves and orange-and-blue flowers shaped like a bird's head. It needs sun and years of growth before flowering.",
    watering: [2, 2], propagation: ["division", "seeds"], edible: ["seeds"], toxicity: "low",
    native: ["South Africa"],
    light: 9, humidity: 5, soilHumidity: 5, ph: [6, 7.5], tempC: [10, 35], heightCm: [100, 200], habit: "Forb/herb",
    flowers: ["orange", "blue"], bloom: ["jan", "feb", "mar", "apr", "may"],
  }),
  defineSpecies({
    name: "Hydrangea macrophylla", author: "(Thunb.) Ser.", family: "Hydrangeaceae",
    en: ["bigleaf hydrangea", "French hydrangea", "mophead hydrangea"], fr: ["hortensia"],
    gbif: 3690580, powo: "795633-1", inat: 58816, trefle: 159087, year: 1830,
    description: "Hydrangea macrophylla is a deciduous shrub from Japan with large heads of flowers whose colour depends on soil pH: blue in acid soil, pink in alkaline soil.",
    watering: [2, 3], propagation: ["cuttings", "layering"], toxicity: "medium",
    native: ["Japan"],
    light: 6, humidity: 6, soilHumidity: 7, ph: [5, 7], tempC: [-20, 32], heightCm: [100, 250], habit: "Shrub",
    flowers: ["blue", "pink", "white"], bloom: ["jun", "jul", "aug", "sep"],
  }),
  defineSpecies({
    name: "Hoya carnosa", author: "(L.f.) R.Br.", family: "Apocynaceae",
    en: ["wax plant", "porcelain flower", "wax flower"], fr: ["fleur de porcelaine", "hoya"],
    gbif: 3170380, powo: "77112836-1", inat: 124386, trefle: 158822, year: 1810,
    description: "Hoya carnosa is an evergreen climber from eastern Asia and Australia with thick waxy leaves and scented clusters of star-shaped flowers. It flowers best when slightly pot-bound.",
    watering: [1, 2], propagation: ["cuttings", "layering"], toxicity: "none",
    native: ["China", "Japan", "Taiwan", "Australia"],
    light: 7, humidity: 6, soilHumidity: 4, ph: [6, 7.5], tempC: [10, 30], heightCm: [200, 600], habit: "Vine",
    flowers: ["white", "pink"], bloom: SUMMER,
  }),
  defineSpecies({
    name: "Pelargonium zonale", author: "(L.) L'Hér.", family: "Geraniaceae",
    en: ["horseshoe geranium", "zonal pelargonium"], fr: ["géranium des fleuristes", "pélargonium zonale"],
    gbif: 3824837, powo: "374226-1", inat: 167845, trefle: 216423, year: 1789,
    description: "Pelargonium zonale is a shrubby perennial from South Africa whose hybrids are the familiar bedding and balcony geraniums. Leaves often carry a dark horseshoe-shaped band.",
    watering: [1, 2], propagation: ["cuttings", "seeds"], edible: ["flowers"], toxicity: "low",
    native: ["South Africa"],
    light: 9, humidity: 4, soilHumidity: 4, ph: [6, 7], tempC: [5, 35], heightCm: [30, 60], habit: "Subshrub",
    flowers: ["red", "pink", "white"], bloom: ["may", "jun", "jul", "aug", "sep"],
  }),
];

/** Lookup by Trefle id or slug, the two forms Trefle's detail routes accept. */
export function findSpeciesByTrefleIdOrSlug(idOrSlug: string): Species | undefined {
  const key = idOrSlug.toLowerCase();
  return SPECIES.find((s) => String(s.trefleId) === key || s.slug === key);
}

// ---------------------------------------------------------------------------------------------
// Diseases (Plant.id health assessment)

export interface Disease {
  entityId: string;
  /** Plant.id's `name`: lower-case, sometimes a taxon ("Fungi"), sometimes a condition. */
  name: string;
  localName: string;
  description: string;
  url: string | null;
  treatment: { biological?: string[]; chemical?: string[]; prevention: string[] };
  classification: string[];
  commonNames: string[];
  cause: string | null;
  /** The follow-up question Plant.id asks to separate the top two suggestions. */
  question: string;
}

function defineDisease(disease: Omit<Disease, "entityId">): Disease {
  return { entityId: fnv1a64Hex(`disease:${disease.name}`), ...disease };
}

export const DISEASES: readonly Disease[] = [
  defineDisease({
    name: "water excess or uneven watering", localName: "water excess or uneven watering",
    description: "Too much or irregular watering deprives roots of oxygen. Leaves turn yellow and soft, growth stalls and the substrate stays wet for days.",
    url: null,
    treatment: {
      biological: ["Let the substrate dry before watering again.", "Repot into fresh, airy substrate if it smells sour."],
      prevention: ["Use a pot with drainage holes.", "Water according to season and light, not on a fixed schedule."],
    },
    classification: ["Abiotic"], commonNames: ["overwatering"], cause: null,
    question: "Are the lower leaves soft and yellow rather than crisp?",
  }),
  defineDisease({
    name: "nutrient deficiency", localName: "nutrient deficiency",
    description: "A lack of nitrogen, iron, magnesium or other nutrients shows as pale or yellowing leaves, often in typical patterns between the veins or on old leaves first.",
    url: "https://en.wikipedia.org/wiki/Plant_nutrition",
    treatment: {
      chemical: ["Apply a balanced fertiliser at the recommended dose.", "Use chelated iron for yellowing between veins on young leaves."],
      prevention: ["Fertilise during the growing season.", "Repot every two to three years."],
    },
    classification: ["Abiotic"], commonNames: ["nutrient disorder", "chlorosis"], cause: null,
    question: "Is the yellowing strongest between the leaf veins?",
  }),
  defineDisease({
    name: "powdery mildew", localName: "powdery mildew",
    description: "Powdery mildew is a fungal disease that covers leaves and shoots with a white, powdery coating. It thrives in dry air with humid nights and weakens the plant.",
    url: "https://en.wikipedia.org/wiki/Powdery_mildew",
    treatment: {
      biological: ["Spray diluted milk or potassium bicarbonate weekly.", "Remove badly affected leaves."],
      chemical: ["Apply a sulfur-based fungicide."],
      prevention: ["Keep good air circulation.", "Water the soil, not the leaves."],
    },
    classification: ["Fungi", "Ascomycota", "Erysiphales"], commonNames: ["powdery mildew", "white mould"], cause: "Erysiphales",
    question: "Is there a white powdery coating that wipes off the leaves?",
  }),
  defineDisease({
    name: "fungal leaf spot", localName: "leaf spot",
    description: "Several fungi cause brown or black spots, often with a yellow halo, that may merge and make leaves fall. Spores spread in water splashes.",
    url: "https://en.wikipedia.org/wiki/Leaf_spot",
    treatment: {
      biological: ["Remove and destroy spotted leaves.", "Apply a Bacillus subtilis product."],
      chemical: ["Apply a copper-based fungicide."],
      prevention: ["Avoid wetting the leaves.", "Space plants for air flow."],
    },
    classification: ["Fungi"], commonNames: ["leaf spot"], cause: null,
    question: "Do the spots have a yellow ring around them?",
  }),
  defineDisease({
    name: "root rot", localName: "root rot",
    description: "Root rot is caused by water moulds such as Pythium in waterlogged substrate. Roots turn brown and mushy and the plant wilts even when the soil is wet.",
    url: "https://en.wikipedia.org/wiki/Root_rot",
    treatment: {
      biological: ["Cut away soft, brown roots and repot into fresh substrate."],
      chemical: ["Drench with a fungicide registered against Pythium."],
      prevention: ["Never leave pots standing in water.", "Use a free-draining substrate."],
    },
    classification: ["Chromista", "Oomycota", "Pythiales"], commonNames: ["root rot", "Pythium root rot"], cause: "Pythium",
    question: "Does the plant wilt although the soil is wet?",
  }),
  defineDisease({
    name: "spider mites", localName: "spider mites",
    description: "Spider mites are tiny arachnids that suck sap from the undersides of leaves, leaving fine pale speckles and webbing. They multiply fast in warm, dry air.",
    url: "https://en.wikipedia.org/wiki/Spider_mite",
    treatment: {
      biological: ["Rinse the leaves with water.", "Release predatory mites (Phytoseiulus persimilis)."],
      chemical: ["Apply an acaricide or insecticidal soap."],
      prevention: ["Raise humidity.", "Inspect the undersides of leaves regularly."],
    },
    classification: ["Animalia", "Arthropoda", "Arachnida", "Trombidiformes", "Tetranychidae"], commonNames: ["red spider mite"], cause: "Tetranychidae",
    question: "Is there fine webbing on the undersides of the leaves?",
  }),
  defineDisease({
    name: "aphids", localName: "aphids",
    description: "Aphids are small sap-sucking insects that cluster on young shoots and buds. They distort growth and leave sticky honeydew on which sooty mould grows.",
    url: "https://en.wikipedia.org/wiki/Aphid",
    treatment: {
      biological: ["Wash aphids off with a jet of water.", "Encourage ladybirds and lacewings."],
      chemical: ["Spray insecticidal soap or neem oil."],
      prevention: ["Avoid excess nitrogen fertiliser.", "Check new shoots weekly in spring."],
    },
    classification: ["Animalia", "Arthropoda", "Insecta", "Hemiptera", "Aphidoidea"], commonNames: ["greenfly", "blackfly"], cause: "Aphidoidea",
    question: "Are there small insects clustered on the young shoots?",
  }),
  defineDisease({
    name: "late blight", localName: "late blight",
    description: "Late blight, caused by Phytophthora infestans, produces dark, water-soaked patches on leaves and stems of tomatoes and potatoes and can destroy plants within days in wet weather.",
    url: "https://en.wikipedia.org/wiki/Phytophthora_infestans",
    treatment: {
      biological: ["Remove and bin infected plants; do not compost them."],
      chemical: ["Apply a copper-based fungicide preventively in wet weather."],
      prevention: ["Grow resistant cultivars.", "Keep foliage dry and rotate crops."],
    },
    classification: ["Chromista", "Oomycota", "Peronosporales"], commonNames: ["potato blight", "tomato blight"], cause: "Phytophthora infestans",
    question: "Are there dark, water-soaked patches on leaves and stems?",
  }),
  defineDisease({
    name: "rust", localName: "rust",
    description: "Rust fungi form orange to brown pustules, mostly on the undersides of leaves. Heavy infections cause leaves to yellow and drop.",
    url: "https://en.wikipedia.org/wiki/Rust_(fungus)",
    treatment: {
      biological: ["Remove infected leaves and fallen debris."],
      chemical: ["Apply a fungicide containing tebuconazole or sulfur."],
      prevention: ["Water at the base in the morning.", "Improve air circulation."],
    },
    classification: ["Fungi", "Basidiomycota", "Pucciniales"], commonNames: ["rust"], cause: "Pucciniales",
    question: "Are there orange powdery pustules under the leaves?",
  }),
];
