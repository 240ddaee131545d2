import { describe, expect, it } from "vitest";
import { pageCsp } from "../../src/lib/static-assets";

const imgSrc = (csp: string) => csp.split("; ").find((d) => d.startsWith("img-src "));

describe("pageCsp: where the pages' images may come from", () => {
  it("allows https photos only when the providers are the real (https) ones", () => {
    const csp = pageCsp({ PLANT_ID_API_URL: "https://api.plant.id/v3", PLANTNET_API_URL: "https://my-api.plantnet.org" });
    expect(imgSrc(csp)).toBe("img-src 'self' data: blob: https:");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
  });

  it("adds the local emulators' origin (once) so their similar-image files load", () => {
    const csp = pageCsp({ PLANT_ID_API_URL: "http://127.0.0.1:8790/plant-id/v3", PLANTNET_API_URL: "http://127.0.0.1:8790/plantnet" });
    expect(imgSrc(csp)).toBe("img-src 'self' data: blob: https: http://127.0.0.1:8790");
    // Only images: scripts and connections stay on our own origin.
    expect(csp).not.toMatch(/(script|connect|default)-src[^;]*8790/);
  });

  it("ignores settings that are not URLs", () => {
    expect(imgSrc(pageCsp({ PLANT_ID_API_URL: "not a url", PLANTNET_API_URL: undefined }))).toBe("img-src 'self' data: blob: https:");
  });
});
