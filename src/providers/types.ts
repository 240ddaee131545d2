/**
 * The one suggestion shape every identification provider is normalised to, and the typed
 * errors their clients throw. Provider clients know nothing about D1, KV or HTTP routes.
 */
export type ProviderName = "plant_id" | "plantnet";

export interface SimilarImage {
  url: string;
  url_small?: string;
  similarity?: number;
  license?: string;
  citation?: string;
}

export interface ProviderSuggestion {
  /** Scientific name without authorship, e.g. "Monstera deliciosa". */
  scientificName: string;
  authorship: string;
  commonNames: string[];
  family: string;
  genus: string;
  gbifId: number | null;
  /** The provider's own score, 0..1. */
  probability: number;
  description: string;
  url: string | null;
  similarImages: SimilarImage[];
  watering: { min: number; max: number } | null;
  propagationMethods: string[];
  edibleParts: string[];
}

export interface DiseaseSuggestion {
  name: string;
  probability: number;
  description: string;
  /** The treatment lists joined into one text (the identify endpoints' `treatment`). */
  treatment: string;
  classification: string[];
  commonNames: string[];
  /** Plant.id's entity id (16 hex), stable across assessments. */
  entityId?: string | null;
  /** Treatment as Plant.id splits it; lists absent upstream are empty. */
  treatmentPlan?: TreatmentPlan;
  cause?: string | null;
  url?: string | null;
  similarImages?: SimilarImage[];
}

export interface TreatmentPlan {
  biological: string[];
  chemical: string[];
  prevention: string[];
}

export interface HealthAssessment {
  isHealthy: boolean;
  isHealthyProbability: number;
  diseases: DiseaseSuggestion[];
}

export interface ProviderAnswer {
  provider: ProviderName;
  /** false when the provider says the image is not a plant (Plant.id is_plant, Pl@ntNet 404). */
  isPlant: boolean;
  suggestions: ProviderSuggestion[];
  health: HealthAssessment | null;
}

export type ProviderErrorKind = "timeout" | "rate_limited" | "auth" | "server" | "malformed" | "network" | "bad_request" | "circuit_open";

export class ProviderError extends Error {
  constructor(
    readonly provider: ProviderName | "trefle" | "openai",
    readonly kind: ProviderErrorKind,
    message: string,
    readonly status?: number,
    /** Seconds the provider asked us to wait (429 Retry-After). */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = "ProviderError";
  }

  /** Worth retrying later (a queue job backs off); auth and bad requests are not. */
  get retryable(): boolean {
    return this.kind !== "auth" && this.kind !== "bad_request";
  }

  toJSON() {
    return { provider: this.provider, kind: this.kind, message: this.message, status: this.status, retryAfterS: this.retryAfterS };
  }
}

export { parseRetryAfter } from "../lib/retry-after";

/**
 * A URL from an upstream answer that is handed on to clients (a link, an image source): kept
 * only when it is an absolute http(s) URL, so an upstream that misbehaves cannot give a client a
 * `javascript:` or `data:` link. Returns the URL as the upstream wrote it, or null.
 */
export function webUrl(value: string | null | undefined): string | null {
  return value && /^https?:\/\//i.test(value) && URL.canParse(value) ? value : null;
}

/**
 * An upstream's similar image as clients get it: none when its URL is not http(s) (`webUrl`),
 * and a small version only when that one is; the optional fields only when given.
 */
export function similarImage(img: {
  url: string | null | undefined;
  small?: string | null | undefined;
  similarity?: number | null | undefined;
  license?: string | null | undefined;
  citation?: string | null | undefined;
}): SimilarImage[] {
  const url = webUrl(img.url);
  if (!url) return [];
  const small = webUrl(img.small);
  return [
    {
      url,
      ...(small ? { url_small: small } : {}),
      ...(img.similarity != null ? { similarity: img.similarity } : {}),
      ...(img.license ? { license: img.license } : {}),
      ...(img.citation ? { citation: img.citation } : {}),
    },
  ];
}
