// Racing a promise with an AbortSignal: for waits whose transport cannot be cancelled (an in-process
// call, a request already sent), so the caller is freed the moment it gives up.
//
// Invariant: the listener is removed once the promise settles (no signal keeps a dead waiter).

/** `promise`, or a rejection with the signal's reason (an Error) as soon as `signal` aborts. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  const reason = (): Error => (signal.reason instanceof Error ? signal.reason : new Error("aborted"));
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reason());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
