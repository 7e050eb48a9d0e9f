/**
 * Fault injection around the real node dependencies: one call of one adapter fails a given number of
 * times, everything else runs for real. Used to prove compensation and exit codes per phase where no
 * natural failure can be provoked quickly.
 */
export class InjectedFault extends Error {
  constructor(what: string) {
    super(`injected fault in ${what}`);
    this.name = 'InjectedFault';
  }
}

/** A proxy of `target` whose `method` throws for its first `times` calls (when `when` matches). */
export function failing<T extends object>(target: T, method: keyof T & string, times: number, when: (...args: unknown[]) => boolean = () => true): T {
  let failures = 0;
  return new Proxy(target, {
    get(t, prop, receiver) {
      const value = Reflect.get(t, prop, receiver) as unknown;
      if (prop !== method || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (failures < times && when(...args)) {
          failures++;
          return Promise.reject(new InjectedFault(method));
        }
        return (value as (...a: unknown[]) => unknown).apply(receiver, args);
      };
    },
  });
}

/** A function that throws for its first `times` calls that match `when`. */
export function failingFn<A extends unknown[], R>(fn: (...args: A) => Promise<R>, times: number, when: (...args: A) => boolean, what: string) {
  let failures = 0;
  return (...args: A): Promise<R> => {
    if (failures < times && when(...args)) {
      failures++;
      return Promise.reject(new InjectedFault(what));
    }
    return fn(...args);
  };
}

/** A proxy of `target` whose first call of `method` that matches `when` waits `ms` first (a short step made to last). */
export function delaying<T extends object>(target: T, method: keyof T & string, ms: number, when: (...args: unknown[]) => boolean = () => true): T {
  let delayed = false;
  return new Proxy(target, {
    get(t, prop, receiver) {
      const value = Reflect.get(t, prop, receiver) as unknown;
      if (prop !== method || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (!delayed && when(...args)) {
          delayed = true;
          await new Promise((resolve) => setTimeout(resolve, ms));
        }
        return (value as (...a: unknown[]) => unknown).apply(receiver, args);
      };
    },
  });
}
