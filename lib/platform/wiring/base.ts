import { systemClock, type Clock } from '../../app/ports/clock';
import { config } from '../config';

/**
 * The composition root, split by concern (docs/decisions.md, "One composition root, wired by
 * concern"). Each module of this folder is an area: a few adapters built together, lazily, once
 * per function instance. A handler wires only the areas it uses, so its bundle holds only their
 * adapters and AWS SDK clients (esbuild cannot drop the unused members of one object literal).
 *
 * Every area adds its members to one shared object, the root: a handler's `wire(...)` and the
 * tests' `container()` are the same object, so a test that moves `clock` moves it for every handler.
 */
function makeRoot() {
  const c = config();
  return {
    config: c,
    clock: systemClock as Clock,
    cursorSecret: c.cursorSecret,
    fanOutPageSize: c.INVOICE_FAN_OUT_PAGE_SIZE,
    graceMs: c.INVOICE_GRACE_MINUTES * 60_000,
    correctionWindowMs: c.maxEventAgeMs,
  };
}
export type Root = ReturnType<typeof makeRoot>;

let root: Root | undefined;

/**
 * An area: `make` builds its members (calling the areas it builds on first) the first time it is
 * wired; they are added to the root. Adapters are given the system clock, not the root's `clock`.
 */
export function area<T extends object>(make: (root: Root) => T): () => Root & T {
  let built: (Root & T) | undefined;
  return () => {
    if (built) return built;
    const r = (root ??= makeRoot());
    return (built = Object.assign(r, make(r)));
  };
}

type Intersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** The root with the given areas built: what a handler passes to its use cases. */
export function wire<A extends (() => object)[]>(...areas: A): Root & Intersection<ReturnType<A[number]>> {
  for (const a of areas) a();
  return (root ??= makeRoot()) as Root & Intersection<ReturnType<A[number]>>;
}
