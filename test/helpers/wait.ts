/**
 * The one polling helper of the test suite: waits for work the Worker finishes later
 * (waitUntil, queue consumers, socket delivery, outgoing mail).
 */

/**
 * Waits until `check` returns a value (anything but undefined, null or false) and returns it.
 * The default deadline is generous for a loaded CI machine; it costs nothing when the condition
 * is met. `describe` adds what was seen to the timeout error.
 */
export async function eventually<T>(
  check: () => T | undefined | null | Promise<T | undefined | null>,
  timeoutMs = 10_000,
  describe?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(describe ? `condition not met in time: ${describe()}` : "condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}
