/**
 * A small in-isolate cache: entries live `ttlMs`, at most `capacity` of them (the oldest entry
 * goes first). For public, slowly changing data read on hot paths, where a database round trip
 * costs more than the answer being up to `ttlMs` old. Each isolate has its own: nothing here is
 * shared or exact.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { at: number; value: V }>();

  constructor(
    private readonly ttlMs: number,
    private readonly capacity: number,
  ) {}

  get(key: string, now = Date.now()): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (now - entry.at >= this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, now = Date.now()): void {
    this.entries.delete(key);
    this.entries.set(key, { at: now, value });
    // Map keeps insertion order: the first key is the oldest write.
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }

  clear(): void {
    this.entries.clear();
  }
}
