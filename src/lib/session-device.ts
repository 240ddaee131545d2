/**
 * What a session's owner is shown to recognise it in `auth/sessions/`: a short label for the
 * client that signed in ("Firefox on Windows", "Plant Community app on Android") and the country
 * it signed in from. Both are read once, at sign-in, and kept with the session; the raw
 * User-Agent and the address are never kept.
 */

export interface SessionDevice {
  /** A short label derived from the User-Agent, never the header itself. */
  client: string;
  /** ISO 3166-1 alpha-2, from Cloudflare's geolocation of the address; null when unknown (`wrangler dev` says "US" for every request). */
  country: string | null;
}

/** What a session started before labels were kept, or without a User-Agent, is called. */
export const UNKNOWN_CLIENT = "Unknown client";

/** Most specific first: an iPhone's UA says "like Mac OS X", Android's says "Linux". */
const SYSTEMS: [RegExp, string][] = [
  [/Windows/, "Windows"],
  [/iPhone|iPad|iPod/, "iOS"],
  [/Android/, "Android"],
  [/CrOS/, "ChromeOS"],
  [/Macintosh|Mac OS X/, "macOS"],
  [/Linux|X11/, "Linux"],
];

/** Most specific first: Edge, Opera and Samsung Internet all say "Chrome" too, and Chrome says "Safari". */
const BROWSERS: [RegExp, string][] = [
  [/\bEdg(e|A|iOS)?\//, "Edge"],
  [/\bOPR\/|\bOpera\b/, "Opera"],
  [/\bSamsungBrowser\//, "Samsung Internet"],
  [/\bFirefox\/|\bFxiOS\//, "Firefox"],
  [/\bChrome\/|\bCriOS\//, "Chrome"],
  [/\bVersion\/[\d.]+.*\bSafari\//, "Safari"],
];

/**
 * Our own app: its User-Agent names it (`PlantCommunity/<version> (<system>)`); the Flutter app's
 * HTTP client, when it does not, says only `Dart/<version> (dart:io)`, and no other client of
 * this API is written in Dart.
 */
const APP = /\bPlant[ _-]?Community\b|^Dart\//i;

/** A short label for the client behind `userAgent`: "<browser> on <system>", our app, or the product's name. */
export function clientLabel(userAgent: string | null | undefined): string {
  const ua = userAgent?.trim().slice(0, 512) ?? "";
  if (!ua) return UNKNOWN_CLIENT;
  const system = SYSTEMS.find(([pattern]) => pattern.test(ua))?.[1];
  const on = system ? ` on ${system}` : "";
  if (APP.test(ua)) return `Plant Community app${on}`;
  const browser = BROWSERS.find(([pattern]) => pattern.test(ua))?.[1];
  if (browser) return `${browser}${on}`;
  if (/^Mozilla\//.test(ua)) return system ? `Browser on ${system}` : "Browser";
  // Anything else (curl, a script's HTTP library): the first product token's name, which is all
  // of it a person would recognise; never version numbers or comments.
  const product = /^([A-Za-z][A-Za-z0-9._-]{0,31})(?:\/|\s|$)/.exec(ua)?.[1];
  return product ? `${product}${on}` : UNKNOWN_CLIENT;
}

/** The caller's country as Cloudflare locates it (`request.cf.country`, else CF-IPCountry); null when unknown. */
export function countryOf(request: Request): string | null {
  const fromCf = (request as { cf?: { country?: unknown } }).cf?.country;
  const code = (typeof fromCf === "string" ? fromCf : request.headers.get("CF-IPCountry"))?.trim().toUpperCase();
  // XX: Cloudflare could not tell; T1 (Tor) and anything else not a country code are unknown too.
  return code && /^[A-Z]{2}$/.test(code) && code !== "XX" ? code : null;
}

/** The device a request signing in comes from. */
export function sessionDeviceOf(request: Request): SessionDevice {
  return { client: clientLabel(request.headers.get("User-Agent")), country: countryOf(request) };
}
