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
export const METADATA_MAX_KEYS = 50;
const METADATA_MAX_KEY_LENGTH = 40;
const METADATA_MAX_VALUE_LENGTH = 500;

/** Keys to set (null: unset), or null to clear all metadata. */
export type MetadataUpdate = Record<string, string | null> | null;

export interface ListOptions {
  limit: number;
  startingAfter?: string;
}

/** Parameters every endpoint accepts (the fake never expands; ids stay ids). */
const ALWAYS_ALLOWED = ['expand'];
const LIST_PARAMS = ['limit', 'starting_after'];

export class ParamReader {
  /**
   * `prefix` names a nested hash (e.g. `lines[3]`) so that errors name the parameter as the
   * client sent it (`lines[3][amount]`), not just its last segment.
   */
  constructor(
    private readonly raw: FormObject,
    allowed: readonly string[],
    private readonly prefix = '',
  ) {
    const known = new Set(prefix === '' ? [...allowed, ...ALWAYS_ALLOWED] : allowed);
    for (const key of Object.keys(raw)) {
      if (!known.has(key)) throw parameterUnknown(this.full(key));
    }
  }

  /** The nested hash this reader reads, as sent (`lines[3]`); '' at the top level. */
  get name(): string {
    return this.prefix;
  }

  /** The parameter's name as sent: `amount` at the top level, `lines[3][amount]` in a nested hash. */
  full(name: string): string {
    return this.prefix === '' ? name : `${this.prefix}[${name}]`;
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
    if (typeof value !== 'string') throw parameterInvalid(this.full(name), `Invalid string: ${this.full(name)} must be a string, not a hash.`);
    return value;
  }

  /** Optional string. Stripe treats an empty string as "unset" for optional fields. */
  string(name: string, maxLength = 5000): string | undefined {
    const value = this.scalar(name);
    if (value === undefined || value === '') return undefined;
    if (value.length > maxLength) {
      throw parameterInvalid(this.full(name), `Invalid string: ${this.full(name)} must be at most ${maxLength} characters.`);
    }
    return value;
  }

  requiredString(name: string): string {
    const value = this.string(name);
    if (value === undefined) throw parameterMissing(this.full(name));
    return value;
  }

  integer(name: string, bounds: { min?: number; max?: number } = {}): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
      throw parameterInvalid(this.full(name), `Invalid integer: ${value}`, 'parameter_invalid_integer');
    }
    const n = Number(value);
    if (bounds.min !== undefined && n < bounds.min) {
      throw parameterInvalid(
        this.full(name),
        `Invalid integer: ${this.full(name)} must be greater than or equal to ${bounds.min}.`,
        'parameter_invalid_integer',
      );
    }
    if (bounds.max !== undefined && n > bounds.max) {
      throw parameterInvalid(this.full(name), `Invalid integer: ${this.full(name)} must be less than or equal to ${bounds.max}.`, 'parameter_invalid_integer');
    }
    return n;
  }

  boolean(name: string): boolean | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (value === 'true') return true;
    if (value === 'false') return false;
    throw parameterInvalid(this.full(name), `Invalid boolean: ${value}`, 'parameter_invalid_string');
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!(values as readonly string[]).includes(value)) {
      throw parameterInvalid(this.full(name), `Invalid ${this.full(name)}: must be one of ${values.join(', ')}`);
    }
    return value as T;
  }

  currency(name = 'currency'): string | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!/^[a-zA-Z]{3}$/.test(value)) throw parameterInvalid(this.full(name), `Invalid currency: ${value}.`);
    // Stripe lower-cases currencies in everything it returns.
    return value.toLowerCase();
  }

  /** `metadata[k]=v` pairs. Empty values mean "unset this key", `metadata=` means "no metadata". */
  metadata(name = 'metadata'): Metadata {
    const update = this.metadataUpdate(name);
    const out: Metadata = {};
    for (const [key, v] of Object.entries(update ?? {})) if (v !== null) out[key] = v;
    return out;
  }

  /**
   * Metadata as a change to existing metadata (e.g. `invoice_metadata`): `null` for `name=` (clear
   * all), otherwise the keys to set, with `null` for keys sent empty (unset). Undefined when absent.
   */
  metadataUpdate(name: string): MetadataUpdate | undefined {
    const value: FormValue | undefined = Object.hasOwn(this.raw, name) ? this.raw[name] : undefined;
    if (value === undefined) return undefined;
    if (value === '') return null;
    const full = this.full(name);
    if (typeof value === 'string') throw parameterInvalid(full, `Invalid hash: ${full} must be a hash of strings.`);
    const out: Record<string, string | null> = {};
    for (const [key, v] of Object.entries(value)) {
      if (typeof v !== 'string') throw parameterInvalid(`${full}[${key}]`, `Invalid string: metadata values must be strings.`);
      if (key.length > METADATA_MAX_KEY_LENGTH) {
        throw parameterInvalid(`${full}[${key}]`, `Metadata keys can have a maximum length of ${METADATA_MAX_KEY_LENGTH} characters.`);
      }
      if (v.length > METADATA_MAX_VALUE_LENGTH) {
        throw parameterInvalid(`${full}[${key}]`, `Metadata values can have a maximum length of ${METADATA_MAX_VALUE_LENGTH} characters.`);
      }
      out[key] = v === '' ? null : v;
    }
    if (Object.values(out).filter((v) => v !== null).length > METADATA_MAX_KEYS) {
      throw parameterInvalid(full, `Metadata can have up to ${METADATA_MAX_KEYS} keys.`);
    }
    return out;
  }

  /** `period[start]`/`period[end]` style integer pairs. */
  integerHash(name: string, keys: readonly string[]): Record<string, number> | undefined {
    const value: FormValue | undefined = Object.hasOwn(this.raw, name) ? this.raw[name] : undefined;
    if (value === undefined) return undefined;
    const full = this.full(name);
    if (typeof value === 'string') throw parameterInvalid(full, `Invalid hash: ${full} must be a hash.`);
    const nested = new ParamReader(value, keys, full);
    const out: Record<string, number> = {};
    for (const key of keys) {
      const n = nested.integer(key);
      if (n !== undefined) out[key] = n;
    }
    return out;
  }

  /**
   * A list of hashes (`lines[0][amount]=...&lines[1][amount]=...`), each read with its own
   * reader whose errors name `lines[i][...]`. Undefined when absent or sent empty.
   */
  hashes(name: string, allowed: readonly string[]): ParamReader[] | undefined {
    const value: FormValue | undefined = Object.hasOwn(this.raw, name) ? this.raw[name] : undefined;
    if (value === undefined || value === '') return undefined;
    const full = this.full(name);
    if (typeof value === 'string') throw parameterInvalid(full, `Invalid array: ${full} must be a list of hashes.`);
    const keys = Object.keys(value);
    if (keys.some((k) => !/^\d+$/.test(k))) throw parameterInvalid(full, `Invalid array: ${full} must be a list of hashes.`);
    return keys
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => {
        const item = value[k] as FormValue;
        if (typeof item === 'string') throw parameterInvalid(`${full}[${k}]`, `Invalid hash: ${full}[${k}] must be a hash.`);
        return new ParamReader(item, allowed, `${full}[${k}]`);
      });
  }

  /** limit / starting_after, with Stripe's default and bounds. */
  list(): ListOptions {
    const opts: ListOptions = { limit: this.integer('limit', { min: 1, max: 100 }) ?? 10 };
    const startingAfter = this.string('starting_after');
    if (startingAfter !== undefined) opts.startingAfter = startingAfter;
    return opts;
  }
}
