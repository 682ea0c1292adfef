/**
 * Typed, validating access to decoded request parameters.
 *
 * Unknown parameters are rejected (Stripe answers `parameter_unknown`) rather
 * than ignored: a product that sends something the fake does not model should
 * find out locally instead of getting a silently different result.
 */
import { parameterInvalid, parameterMissing, parameterUnknown } from './errors';
import type { FormObject, FormValue, Metadata } from './types';

// Stripe's documented metadata limits.
const METADATA_MAX_KEYS = 50;
const METADATA_MAX_KEY_LENGTH = 40;
const METADATA_MAX_VALUE_LENGTH = 500;

export interface RangeFilter {
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
}

export interface ListOptions {
  limit: number;
  startingAfter?: string;
  endingBefore?: string;
  created?: RangeFilter;
}

/** Parameters every endpoint accepts (the fake never expands; ids stay ids). */
const ALWAYS_ALLOWED = ['expand'];
const LIST_PARAMS = ['limit', 'starting_after', 'ending_before', 'created'];

export class ParamReader {
  constructor(
    private readonly raw: FormObject,
    allowed: readonly string[],
  ) {
    const known = new Set([...allowed, ...ALWAYS_ALLOWED]);
    for (const key of Object.keys(raw)) {
      if (!known.has(key)) throw parameterUnknown(key);
    }
  }

  /** For endpoints that take no parameters besides `expand`. */
  static expectNone(raw: FormObject): void {
    new ParamReader(raw, []);
  }

  static forList(raw: FormObject, allowed: readonly string[]): ParamReader {
    return new ParamReader(raw, [...allowed, ...LIST_PARAMS]);
  }

  private scalar(name: string): string | undefined {
    const value: FormValue | undefined = Object.hasOwn(this.raw, name) ? this.raw[name] : undefined;
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw parameterInvalid(name, `Invalid string: ${name} must be a string, not a hash.`);
    return value;
  }

  /** Optional string. Stripe treats an empty string as "unset" for optional fields. */
  string(name: string, maxLength = 5000): string | undefined {
    const value = this.scalar(name);
    if (value === undefined || value === '') return undefined;
    if (value.length > maxLength) {
      throw parameterInvalid(name, `Invalid string: ${name} must be at most ${maxLength} characters.`);
    }
    return value;
  }

  requiredString(name: string): string {
    const value = this.string(name);
    if (value === undefined) throw parameterMissing(name);
    return value;
  }

  integer(name: string, bounds: { min?: number; max?: number } = {}): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
      throw parameterInvalid(name, `Invalid integer: ${value}`, 'parameter_invalid_integer');
    }
    const n = Number(value);
    if (bounds.min !== undefined && n < bounds.min) {
      throw parameterInvalid(name, `Invalid integer: ${name} must be greater than or equal to ${bounds.min}.`, 'parameter_invalid_integer');
    }
    if (bounds.max !== undefined && n > bounds.max) {
      throw parameterInvalid(name, `Invalid integer: ${name} must be less than or equal to ${bounds.max}.`, 'parameter_invalid_integer');
    }
    return n;
  }

  /** A decimal string with at most 12 decimal places, as Stripe's `*_decimal` fields take. */
  decimal(name: string, allowNegative: boolean): string | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    const re = allowNegative ? /^-?\d+(\.\d{1,12})?$/ : /^\d+(\.\d{1,12})?$/;
    if (!re.test(value)) throw parameterInvalid(name, `Invalid decimal: ${value}`, 'parameter_invalid_string');
    return value;
  }

  boolean(name: string): boolean | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (value === 'true') return true;
    if (value === 'false') return false;
    throw parameterInvalid(name, `Invalid boolean: ${value}`, 'parameter_invalid_string');
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!(values as readonly string[]).includes(value)) {
      throw parameterInvalid(name, `Invalid ${name}: must be one of ${values.join(', ')}`);
    }
    return value as T;
  }

  currency(name = 'currency'): string | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!/^[a-zA-Z]{3}$/.test(value)) throw parameterInvalid(name, `Invalid currency: ${value}.`);
    // Stripe lower-cases currencies in everything it returns.
    return value.toLowerCase();
  }

  /** `metadata[k]=v` pairs. Empty values mean "unset this key", `metadata=` means "no metadata". */
  metadata(name = 'metadata'): Metadata {
    const value: FormValue | undefined = Object.hasOwn(this.raw, name) ? this.raw[name] : undefined;
    const out: Metadata = {};
    if (value === undefined || value === '') return out;
    if (typeof value === 'string') throw parameterInvalid(name, `Invalid hash: ${name} must be a hash of strings.`);
    for (const [key, v] of Object.entries(value)) {
      if (typeof v !== 'string') throw parameterInvalid(`${name}[${key}]`, `Invalid string: metadata values must be strings.`);
      if (key.length > METADATA_MAX_KEY_LENGTH) {
        throw parameterInvalid(`${name}[${key}]`, `Metadata keys can have a maximum length of ${METADATA_MAX_KEY_LENGTH} characters.`);
      }
      if (v.length > METADATA_MAX_VALUE_LENGTH) {
        throw parameterInvalid(`${name}[${key}]`, `Metadata values can have a maximum length of ${METADATA_MAX_VALUE_LENGTH} characters.`);
      }
      if (v !== '') out[key] = v;
    }
    if (Object.keys(out).length > METADATA_MAX_KEYS) {
      throw parameterInvalid(name, `Metadata can have up to ${METADATA_MAX_KEYS} keys.`);
    }
    return out;
  }

  /** `period[start]`/`period[end]` style integer pairs. */
  integerHash(name: string, keys: readonly string[]): Record<string, number> | undefined {
    const value: FormValue | undefined = Object.hasOwn(this.raw, name) ? this.raw[name] : undefined;
    if (value === undefined) return undefined;
    if (typeof value === 'string') throw parameterInvalid(name, `Invalid hash: ${name} must be a hash.`);
    const nested = new ParamReader(value, keys);
    const out: Record<string, number> = {};
    for (const key of keys) {
      const n = nested.integer(key);
      if (n !== undefined) out[key] = n;
    }
    return out;
  }

  /** limit / starting_after / ending_before / created, with Stripe's defaults and bounds. */
  list(): ListOptions {
    const opts: ListOptions = { limit: this.integer('limit', { min: 1, max: 100 }) ?? 10 };
    const startingAfter = this.string('starting_after');
    const endingBefore = this.string('ending_before');
    if (startingAfter !== undefined && endingBefore !== undefined) {
      throw parameterInvalid('starting_after', 'You may only specify one of these parameters: ending_before, starting_after.');
    }
    if (startingAfter !== undefined) opts.startingAfter = startingAfter;
    if (endingBefore !== undefined) opts.endingBefore = endingBefore;
    const created: FormValue | undefined = Object.hasOwn(this.raw, 'created') ? this.raw.created : undefined;
    if (typeof created === 'string') {
      const exact = this.integer('created');
      if (exact !== undefined) opts.created = { gte: exact, lte: exact };
    } else if (created !== undefined) {
      opts.created = this.integerHash('created', ['gt', 'gte', 'lt', 'lte']);
    }
    return opts;
  }
}
