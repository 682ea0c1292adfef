import type { KeyLimits } from './apikey';

/**
 * Fixed windows of a key's limits: requests in a calendar second, events in a calendar minute (UTC),
 * counted on one item per key and minute each (a second is an attribute `s<0..59>` of its minute's
 * item). A client can send up to twice a limit across a window's edge, and is never refused below
 * it inside one window.
 */
export interface LimitWindow {
  /** The item's key: `<keyId>|r|<unix minute>` or `<keyId>|e|<unix minute>`. */
  item: string;
  /** The attribute counted in the item. */
  field: string;
  /** When the window ends (ms since the epoch): what Retry-After waits for. */
  endsAt: number;
}

export type LimitKind = 'requests' | 'events';

export function limitWindow(keyId: string, kind: LimitKind, at: Date): LimitWindow {
  const ms = at.getTime();
  const minute = Math.floor(ms / 60_000);
  if (kind === 'events') return { item: `${keyId}|e|${minute}`, field: 'n', endsAt: (minute + 1) * 60_000 };
  const second = Math.floor(ms / 1000);
  return { item: `${keyId}|r|${minute}`, field: `s${second % 60}`, endsAt: (second + 1) * 1000 };
}

/** Whole seconds until the window ends, at least 1 (Retry-After is in seconds). */
export const retryAfterSeconds = (window: LimitWindow, at: Date) => Math.max(1, Math.ceil((window.endsAt - at.getTime()) / 1000));

/** The limits that apply to a key: its own, else the deployment's. */
export const effectiveLimits = (own: Partial<KeyLimits> | undefined, defaults: KeyLimits): KeyLimits => ({
  requestsPerSecond: own?.requestsPerSecond ?? defaults.requestsPerSecond,
  eventsPerMinute: own?.eventsPerMinute ?? defaults.eventsPerMinute,
});
