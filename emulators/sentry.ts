// Sentry ingestion emulator: `POST /api/{project}/envelope/` with `X-Sentry-Auth: Sentry
// sentry_key=<public key>, …` and a newline-separated envelope (header, item header, item).
// Keeps every accepted event so tests and local runs can see what was reported.
// Web-standard APIs only (runs in workerd tests and the Node server).

export interface SentryEvent {
  project: string;
  envelopeHeader: Record<string, unknown>;
  itemType: string;
  event: Record<string, unknown>;
}

export interface SentryEmulator {
  handle(req: Request): Promise<Response>;
  readonly events: readonly SentryEvent[];
  reset(): void;
}

export function createSentryEmulator(options: { publicKeys?: string[] } = {}): SentryEmulator {
  const keys = new Set(options.publicKeys ?? ["emulatorkey"]);
  let events: SentryEvent[] = [];

  async function handle(req: Request): Promise<Response> {
    const match = /^\/api\/(\d+)\/envelope\/?$/.exec(new URL(req.url).pathname);
    if (!match) return Response.json({ detail: "not found" }, { status: 404 });
    if (req.method !== "POST") return Response.json({ detail: "method not allowed" }, { status: 405 });
    const key = /sentry_key=([^,\s]+)/.exec(req.headers.get("X-Sentry-Auth") ?? "")?.[1];
    if (!key || !keys.has(key)) return Response.json({ detail: "invalid api key" }, { status: 401 });
    // Envelopes are newline-separated JSON; read bytes (their content type is not text/*).
    const lines = new TextDecoder()
      .decode(await req.arrayBuffer())
      .split("\n")
      .filter((l) => l.trim() !== "");
    try {
      const [header, itemHeader, item] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      if (!header || !itemHeader || !item || typeof itemHeader.type !== "string") throw new Error("incomplete envelope");
      events.push({ project: match[1]!, envelopeHeader: header, itemType: itemHeader.type, event: item });
      return Response.json({ id: header.event_id ?? null });
    } catch {
      return Response.json({ detail: "invalid envelope" }, { status: 400 });
    }
  }

  return {
    handle,
    get events() {
      return events;
    },
    reset() {
      events = [];
    },
  };
}
