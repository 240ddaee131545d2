// The label and country a session is recognised by in auth/sessions/ (src/lib/session-device.ts).
import { describe, expect, it } from "vitest";
import { clientLabel, countryOf, UNKNOWN_CLIENT } from "../../src/lib/session-device";

describe("clientLabel", () => {
  it.each([
    [
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
      "Chrome on macOS",
    ],
    [
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70",
      "Edge on Windows",
    ],
    ["Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Windows"],
    [
      "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
      "Safari on iOS",
    ],
    [
      "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
      "Chrome on iOS",
    ],
    [
      "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
      "Samsung Internet on Android",
    ],
    [
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
      "Opera on Linux",
    ],
    [
      "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
      "Chrome on ChromeOS",
    ],
    ["PlantCommunity/2.4.1 (Android 14; Pixel 8)", "Plant Community app on Android"],
    ["PlantCommunity/2.4.1 (iOS 18.1; iPhone15,2)", "Plant Community app on iOS"],
    ["Dart/3.5 (dart:io)", "Plant Community app"],
    ["Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "Browser on Windows"],
    ["curl/8.5.0", "curl"],
    ["python-requests/2.32.3", "python-requests"],
    ["", UNKNOWN_CLIENT],
    [null, UNKNOWN_CLIENT],
    ["(((", UNKNOWN_CLIENT],
  ])("%s → %s", (ua, label) => {
    expect(clientLabel(ua)).toBe(label);
  });
});

describe("countryOf", () => {
  // A Request's `cf` is read-only: a stand-in with the same two fields.
  const request = (headers: Record<string, string>, cf?: Record<string, unknown>) =>
    ({ headers: new Headers(headers), cf }) as unknown as Request;

  it("reads Cloudflare's geolocation, else the CF-IPCountry header; unknown, Tor and junk are null", () => {
    expect(countryOf(request({}, { country: "NL" }))).toBe("NL");
    expect(countryOf(request({ "CF-IPCountry": "be" }))).toBe("BE");
    expect(countryOf(request({ "CF-IPCountry": "XX" }))).toBeNull();
    expect(countryOf(request({ "CF-IPCountry": "T1" }))).toBeNull();
    expect(countryOf(request({ "CF-IPCountry": "<script>" }))).toBeNull();
    expect(countryOf(request({}))).toBeNull();
  });
});
