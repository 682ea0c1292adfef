/**
 * Decoding of Stripe's form-encoded parameters.
 *
 * stripe-node sends POST bodies as `application/x-www-form-urlencoded` and GET /
 * DELETE parameters in the query string, both with bracket notation for nesting
 * (`metadata[customer]=x`, `expand[0]=lines`). Brackets arrive unescaped, but
 * other clients (curl, the dashboard) may escape them, so `%5B`/`%5D` are
 * accepted too: keys are percent-decoded before the brackets are interpreted.
 *
 * Arrays are kept as objects with numeric string keys ('0', '1', ...): Stripe
 * itself cannot tell `metadata[0]=x` from an array element, and every endpoint
 * knows whether it expects a list (see `ParamReader.hashes`).
 */
import { parameterInvalid } from './errors';
import type { FormObject, FormValue } from './types';

function decodeComponent(raw: string): string {
  const spaced = raw.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    // A stray '%' is not worth rejecting the whole request for; keep it literal.
    return spaced;
  }
}

/** Splits `a[b][]` into ['a', 'b', '']; a key with unbalanced brackets is one literal segment. */
function splitKey(key: string): string[] {
  const open = key.indexOf('[');
  if (open <= 0) return [key];
  const segments = [key.slice(0, open)];
  const rest = key.slice(open);
  const re = /\[([^[\]]*)\]/gy;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(rest)) !== null) {
    segments.push(m[1] ?? '');
    consumed = re.lastIndex;
  }
  return consumed === rest.length ? segments : [key];
}

function isObject(value: FormValue | undefined): value is FormObject {
  return typeof value === 'object' && value !== null;
}

function assign(target: FormObject, segments: string[], value: string, fullKey: string): void {
  let node = target;
  for (let i = 0; i < segments.length; i++) {
    let segment = segments[i] ?? '';
    if (segment === '__proto__' || segment === 'constructor' || segment === 'prototype') {
      throw parameterInvalid(fullKey, `Invalid parameter name: ${fullKey}`);
    }
    // `a[]=x&a[]=y` appends, like qs does.
    if (segment === '' && i > 0) segment = String(Object.keys(node).length);
    const last = i === segments.length - 1;
    const existing = Object.hasOwn(node, segment) ? node[segment] : undefined;
    if (last) {
      if (isObject(existing)) {
        throw parameterInvalid(fullKey, `Invalid value for ${fullKey}: it was also sent as a hash.`);
      }
      node[segment] = value;
      return;
    }
    if (existing === undefined) {
      const child: FormObject = {};
      node[segment] = child;
      node = child;
    } else if (isObject(existing)) {
      node = existing;
    } else {
      throw parameterInvalid(fullKey, `Invalid hash for ${segments.slice(0, i + 1).join('.')}: it was also sent as a string.`);
    }
  }
}

/** Parses a form body or query string (without the leading '?'). */
export function parseForm(text: string): FormObject {
  const out: FormObject = {};
  if (text === '') return out;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawKey = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    const key = decodeComponent(rawKey);
    if (key === '') continue;
    assign(out, splitKey(key), decodeComponent(rawValue), key);
  }
  return out;
}

/**
 * A canonical, order-independent string for a parameter set. Idempotency
 * compares parameters by value, so `a=1&b=2` and `b=2&a=1` must be equal.
 */
export function canonicalParams(params: FormObject): string {
  const canon = (v: FormValue): unknown => {
    if (typeof v === 'string') return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = canon(v[k] as FormValue);
    return sorted;
  };
  return JSON.stringify(canon(params));
}
