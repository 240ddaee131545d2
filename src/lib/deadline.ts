/**
 * A deadline for a call the platform gives none (Durable Object RPC, a dependency probe): the
 * call's own answer, or a rejection once `ms` have passed without it. The call itself is not
 * cancelled; its late answer is ignored. The timer is cleared either way.
 */
export function withinDeadline<T>(call: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([call, late]).finally(() => clearTimeout(timer));
}
