/**
 * A provider's credential must not ride out in a failed call's error: its message is logged
 * ("provider call failed"), reported to Sentry, and kept in an identification request's `errors`,
 * which its owner reads. Pl@ntNet's key travels in the query (`api-key=`), so the call's URL is
 * a credential; the runtime names that URL when it refuses a fetch, and an upstream may echo
 * the request (or the header's token) in an error body.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { errorFromResponse, fetchWithTimeout } from "../../src/providers/http";
import { identifyWithPlantId } from "../../src/providers/plant-id";
import { identifyWithPlantNet } from "../../src/providers/plantnet";
import { trefleSpeciesFor } from "../../src/providers/trefle";
import { ProviderError } from "../../src/providers/types";

const PLANTNET_KEY = "2b10PlantNetSecretKey0123456789";
const PLANT_ID_KEY = "plantIdSecretKey-abcdef0123456789";
const TREFLE_TOKEN = "trefleSecretToken-9876543210fedcba";

afterEach(() => vi.restoreAllMocks());

function plantNetCall(apiKey = PLANTNET_KEY) {
  return identifyWithPlantNet(
    { baseUrl: "https://plantnet.example", apiKey, timeoutMs: 5000 },
    {
      images: [{ bytes: new Uint8Array([1]), mime: "image/jpeg" }],
      organs: ["leaf"],
      project: "all",
      includeRelatedImages: false,
      maxResults: 5,
      language: "en",
    },
  );
}

async function failure(call: Promise<unknown>): Promise<ProviderError> {
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

/** The error as every reader of it sees it: its message and its JSON (logs, Sentry, request errors). */
function everything(err: ProviderError): string {
  return `${err.message}\n${JSON.stringify(err.toJSON())}\n${String(err)}`;
}

describe("provider credentials in failed calls", () => {
  it("a key with characters a query writes otherwise than encodeURIComponent (~ ' ( ) !, a space) is not carried either", async () => {
    // Review helper-139: a URL's query is form-encoded (%7E, %27, +), not as encodeURIComponent writes it.
    const key = "2b10Plant~Net'(Secret) Key!0123";
    const inQuery = new URLSearchParams({ k: key }).toString().slice(2);
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      throw new TypeError(`Fetch API cannot load: ${String(input)}`);
    });
    const text = everything(await failure(plantNetCall(key)));
    expect(text).toContain("plantnet unreachable");
    expect(text).not.toContain(inQuery);
    expect(text).not.toContain("Secret");
  });

  it("a fetch the runtime refuses, naming the URL with Pl@ntNet's key in it, does not carry the key", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      throw new TypeError(`Fetch API cannot load: ${String(input)}`);
    });
    const text = everything(await failure(plantNetCall()));
    expect(text).toContain("plantnet unreachable");
    expect(text).not.toContain(PLANTNET_KEY);
  });

  it("an error body that echoes the request URL does not carry the key", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(
      async (input) => new Response(JSON.stringify({ error: "Bad request", url: String(input) }), { status: 400 }),
    );
    const err = await failure(plantNetCall());
    expect(err.kind).toBe("bad_request");
    expect(err.message).toContain("plantnet answered 400");
    expect(everything(err)).not.toContain(PLANTNET_KEY);
    expect(everything(err)).not.toContain(encodeURIComponent(PLANTNET_KEY));
  });

  it("an error body that echoes a header's key (Plant.id's Api-Key, Trefle's bearer token) does not carry it", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(async (_input, init) => {
      const headers = new Headers(init?.headers);
      const echoed = headers.get("Api-Key") ?? headers.get("Authorization");
      return new Response(`invalid credential: ${echoed}`, { status: 401 });
    });
    const plantId = await failure(
      identifyWithPlantId(
        { baseUrl: "https://plant.id.example", apiKey: PLANT_ID_KEY, timeoutMs: 5000 },
        { images: [new Uint8Array([1])], language: "en" },
      ),
    );
    expect(plantId.kind).toBe("auth");
    expect(everything(plantId)).not.toContain(PLANT_ID_KEY);
    const trefle = await failure(
      trefleSpeciesFor({ baseUrl: "https://trefle.example", token: TREFLE_TOKEN, timeoutMs: 5000 }, "Monstera deliciosa"),
    );
    expect(trefle.kind).toBe("auth");
    expect(everything(trefle)).not.toContain(TREFLE_TOKEN);
    expect(trefle.message).toContain("[redacted]");
  });

  it("a connection lost mid-body whose reason names the URL does not carry the key", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"results":'));
          controller.error(new Error(`connection reset while reading ${String(input)}`));
        },
      });
      return new Response(body, { status: 200 });
    });
    const err = await failure(plantNetCall());
    expect(err.kind).toBe("network");
    expect(everything(err)).not.toContain(PLANTNET_KEY);
  });

  it("a credential is redacted whatever its query parameter or header is called: the provider names it, not a pattern", async () => {
    // Until now credentials were found by name (key|token|secret|signature, three headers): a
    // provider sending its key as `auth=` or in `X-Client-Auth` would have had it carried out.
    const queryKey = "queryCredential-0123456789abcdef";
    const headerKey = "headerCredential-fedcba9876543210";
    const url = `https://new-provider.example/v1/identify?auth=${queryKey}`;
    const init = { headers: { "X-Client-Auth": headerKey } };
    const call = { timeoutMs: 5000, credentials: [queryKey, headerKey] };
    vi.spyOn(globalThis, "fetch").mockImplementationOnce(async (input) => {
      throw new TypeError(`Fetch API cannot load: ${String(input)}`);
    });
    const refused = await failure(fetchWithTimeout("plantnet", url, init, call));
    expect(refused.message).toContain("unreachable: Fetch API cannot load: https://new-provider.example/v1/identify?auth=[redacted]");
    vi.spyOn(globalThis, "fetch").mockImplementationOnce(async (input, sent) => {
      const echoed = new Headers(sent?.headers).get("X-Client-Auth");
      return new Response(`bad request to ${String(input)} with ${echoed}`, { status: 400 });
    });
    const answered = await errorFromResponse("plantnet", await fetchWithTimeout("plantnet", url, init, call));
    expect(answered.message).toBe(
      "plantnet answered 400: bad request to https://new-provider.example/v1/identify?auth=[redacted] with [redacted]",
    );
    for (const err of [refused, answered]) {
      expect(everything(err)).not.toContain(queryKey);
      expect(everything(err)).not.toContain(headerKey);
    }
  });
});
