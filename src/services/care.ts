/**
 * Rule-based care advice from a species' catalogue data (light and water needs, hardiness).
 * Used when no AI care is available, and by the synchronous identify answer; `source: "rules"`
 * tells clients where it came from, and `language` which language it is written in: the one asked
 * for when the advice is written in it (CARE_RULES_LANGUAGES), else English.
 */
import type { PLANTNET_LANGUAGES } from "../providers/plantnet";

export interface CatalogueCareFields {
  scientific_name: string;
  light_requirements: string | null;
  water_requirements: string | null;
  hardiness_zone_min: number | null;
  hardiness_zone_max: number | null;
  plant_type: string | null;
}

type Light = "full_sun" | "partial_sun" | "partial_shade" | "full_shade";
type Water = "low" | "moderate" | "high";

/** One language's advice: a sentence per light and water need, and the hardiness sentence. */
interface CarePhrases {
  light: Record<Light, string>;
  water: Record<Water, string>;
  hardiness: (min: number, max: number) => string;
}

/**
 * The advice in every language the identification engines both answer in (Pl@ntNet's list, which
 * Plant.id covers too): a request in one of them gets its advice in it. The same advice in each,
 * written as a gardener there would say it. French puts a no-break space before `:` and `;`.
 */
const PHRASES: Record<(typeof PLANTNET_LANGUAGES)[number], CarePhrases> = {
  en: {
    light: {
      full_sun: "Full sun: at least 6 hours of direct sunlight a day; a south-facing window indoors.",
      partial_sun: "Partial sun: 4–6 hours of direct light, ideally morning sun.",
      partial_shade: "Partial shade: bright, indirect light or dappled shade; avoid harsh afternoon sun.",
      full_shade: "Shade: little direct sun; bright shade or a north-facing window.",
    },
    water: {
      low: "Water sparingly: let the soil dry out completely between waterings.",
      moderate: "Water when the top 2–3 cm of soil are dry; never leave the roots standing in water.",
      high: "Keep the soil evenly moist; do not let it dry out.",
    },
    hardiness: (min, max) => `Hardy outdoors in USDA zones ${min}–${max}.`,
  },
  fr: {
    light: {
      full_sun: "Plein soleil : au moins 6 heures de soleil direct par jour ; en intérieur, près d’une fenêtre orientée au sud.",
      partial_sun: "Soleil partiel : 4 à 6 heures de lumière directe, de préférence le soleil du matin.",
      partial_shade: "Mi-ombre : une lumière vive mais indirecte ou une ombre légère ; évitez le soleil brûlant de l’après-midi.",
      full_shade: "Ombre : peu de soleil direct ; une ombre lumineuse ou une fenêtre orientée au nord.",
    },
    water: {
      low: "Arrosez avec parcimonie : laissez la terre sécher complètement entre deux arrosages.",
      moderate: "Arrosez quand les 2 à 3 premiers centimètres de terre sont secs ; ne laissez jamais les racines baigner dans l’eau.",
      high: "Gardez la terre toujours légèrement humide ; ne la laissez pas se dessécher.",
    },
    hardiness: (min, max) => `Rustique en pleine terre dans les zones USDA ${min} à ${max}.`,
  },
  de: {
    light: {
      full_sun: "Volle Sonne: mindestens 6 Stunden direkte Sonne am Tag; drinnen an einem Südfenster.",
      partial_sun: "Halbsonnig: 4–6 Stunden direktes Licht, am besten Morgensonne.",
      partial_shade: "Halbschatten: helles, indirektes Licht oder lichter Schatten; pralle Nachmittagssonne meiden.",
      full_shade: "Schatten: wenig direkte Sonne; heller Schatten oder ein Nordfenster.",
    },
    water: {
      low: "Sparsam gießen: Die Erde zwischen zwei Wassergaben ganz austrocknen lassen.",
      moderate: "Gießen, wenn die oberen 2–3 cm der Erde trocken sind; die Wurzeln nie im Wasser stehen lassen.",
      high: "Die Erde gleichmäßig feucht halten; nicht austrocknen lassen.",
    },
    hardiness: (min, max) => `Im Freien winterhart in den USDA-Zonen ${min}–${max}.`,
  },
  es: {
    light: {
      full_sun: "Pleno sol: al menos 6 horas de sol directo al día; en interior, junto a una ventana orientada al sur.",
      partial_sun: "Sol parcial: de 4 a 6 horas de luz directa, mejor si es sol de la mañana.",
      partial_shade: "Semisombra: luz intensa pero indirecta o sombra ligera; evita el sol fuerte de la tarde.",
      full_shade: "Sombra: poco sol directo; sombra luminosa o una ventana orientada al norte.",
    },
    water: {
      low: "Riega poco: deja que la tierra se seque por completo entre riego y riego.",
      moderate: "Riega cuando los 2–3 cm superiores de la tierra estén secos; no dejes nunca las raíces encharcadas.",
      high: "Mantén la tierra siempre algo húmeda; no dejes que se seque.",
    },
    hardiness: (min, max) => `Resiste al aire libre en las zonas USDA ${min} a ${max}.`,
  },
  it: {
    light: {
      full_sun: "Pieno sole: almeno 6 ore di sole diretto al giorno; in casa, vicino a una finestra esposta a sud.",
      partial_sun: "Sole parziale: 4–6 ore di luce diretta, meglio se sole del mattino.",
      partial_shade: "Mezz’ombra: luce intensa ma indiretta oppure ombra leggera; evita il sole forte del pomeriggio.",
      full_shade: "Ombra: poco sole diretto; ombra luminosa o una finestra esposta a nord.",
    },
    water: {
      low: "Annaffia con parsimonia: lascia asciugare del tutto il terriccio tra un’annaffiatura e l’altra.",
      moderate: "Annaffia quando i primi 2–3 cm di terriccio sono asciutti; non lasciare mai le radici nell’acqua.",
      high: "Mantieni il terriccio sempre leggermente umido; non lasciarlo seccare.",
    },
    hardiness: (min, max) => `Resiste all’aperto nelle zone USDA ${min}–${max}.`,
  },
  pt: {
    light: {
      full_sun: "Sol pleno: pelo menos 6 horas de sol direto por dia; dentro de casa, perto de uma janela voltada para o sul.",
      partial_sun: "Sol parcial: 4 a 6 horas de luz direta, de preferência o sol da manhã.",
      partial_shade: "Meia-sombra: luz clara e indireta ou sombra filtrada; evite o sol forte da tarde.",
      full_shade: "Sombra: pouco sol direto; sombra clara ou uma janela voltada para o norte.",
    },
    water: {
      low: "Regue pouco: deixe a terra secar por completo entre uma rega e outra.",
      moderate: "Regue quando os 2–3 cm de cima da terra estiverem secos; nunca deixe as raízes encharcadas.",
      high: "Mantenha a terra sempre levemente úmida; não a deixe secar.",
    },
    hardiness: (min, max) => `Resiste ao ar livre nas zonas USDA ${min} a ${max}.`,
  },
  nl: {
    light: {
      full_sun: "Volle zon: minstens 6 uur direct zonlicht per dag; binnen bij een raam op het zuiden.",
      partial_sun: "Halfzon: 4–6 uur direct licht, het liefst ochtendzon.",
      partial_shade: "Halfschaduw: helder, indirect licht of lichte schaduw; vermijd de felle middagzon.",
      full_shade: "Schaduw: weinig directe zon; lichte schaduw of een raam op het noorden.",
    },
    water: {
      low: "Geef spaarzaam water: laat de grond tussen twee gietbeurten helemaal opdrogen.",
      moderate: "Geef water zodra de bovenste 2–3 cm van de grond droog is; laat de wortels nooit in het water staan.",
      high: "Houd de grond gelijkmatig vochtig; laat hem niet uitdrogen.",
    },
    hardiness: (min, max) => `Buiten winterhard in USDA-zones ${min}–${max}.`,
  },
  cs: {
    light: {
      full_sun: "Plné slunce: alespoň 6 hodin přímého slunce denně; v bytě u okna na jih.",
      partial_sun: "Částečné slunce: 4–6 hodin přímého světla, nejlépe ranní slunce.",
      partial_shade: "Polostín: jasné nepřímé světlo nebo řídký stín; chraňte před ostrým odpoledním sluncem.",
      full_shade: "Stín: málo přímého slunce; světlý stín nebo okno na sever.",
    },
    water: {
      low: "Zalévejte střídmě: mezi zálivkami nechte zeminu úplně vyschnout.",
      moderate: "Zalévejte, když horní 2–3 cm zeminy proschnou; nikdy nenechávejte kořeny stát ve vodě.",
      high: "Udržujte zeminu stále mírně vlhkou; nenechte ji vyschnout.",
    },
    hardiness: (min, max) => `Venku přezimuje v zónách USDA ${min}–${max}.`,
  },
};

export type CareRulesLanguage = keyof typeof PHRASES;

/** The languages the rule-based advice is written in; any other is answered in English. */
export const CARE_RULES_LANGUAGES = Object.keys(PHRASES) as CareRulesLanguage[];

/** The language the advice for `language` is written in: itself when there are phrases for it, else English. */
export function careRulesLanguage(language: string): CareRulesLanguage {
  return Object.hasOwn(PHRASES, language) ? (language as CareRulesLanguage) : "en";
}

export function ruleBasedCare(species: CatalogueCareFields, language: string) {
  if (!species.light_requirements && !species.water_requirements) return null;
  const written = careRulesLanguage(language);
  const phrases = PHRASES[written];
  const zones =
    species.hardiness_zone_min != null && species.hardiness_zone_max != null
      ? phrases.hardiness(species.hardiness_zone_min, species.hardiness_zone_max)
      : null;
  return {
    source: "rules" as const,
    language: written,
    scientific_name: species.scientific_name,
    light: phraseFor(phrases.light, species.light_requirements),
    water: phraseFor(phrases.water, species.water_requirements),
    light_requirements: species.light_requirements,
    water_requirements: species.water_requirements,
    hardiness: zones,
    plant_type: species.plant_type,
  };
}

/** The sentence for a catalogue value (null for none, or one the table does not know). */
function phraseFor(table: Record<string, string>, value: string | null): string | null {
  return value !== null && Object.hasOwn(table, value) ? table[value]! : null;
}
