/**
 * Billing periods are UTC calendar months, half-open [start, end), keyed "YYYY-MM".
 * An event belongs to the period containing its `time`, not its arrival time.
 *
 * Keys run from 1970-01 to 9998-12: every period's start and end is then an instant with a
 * four-digit year (9999-12 would end in year 10000, which RFC 3339 cannot write), and Date.UTC
 * never sees a year under 100 (it reads those as 19xx).
 */
export const PERIOD_PATTERN = /^(19[7-9]\d|[2-8]\d{3}|9\d{2}[0-8])-(0[1-9]|1[0-2])$/;
export const PERIOD_RANGE = { first: '1970-01', last: '9998-12' } as const;
/** The shape of a key, any year: a key of this shape outside PERIOD_RANGE is out of range, not malformed. */
export const PERIOD_SHAPE = /^\d{4}-(0[1-9]|1[0-2])$/;

export class Period {
  private constructor(
    readonly year: number,
    readonly month: number, // 1..12
  ) {}

  static parse(key: string): Period {
    const m = PERIOD_PATTERN.exec(key);
    if (!m) throw new RangeError(`period must be YYYY-MM, got "${key}"`);
    return new Period(Number(m[1]), Number(m[2]));
  }

  static isValidKey(key: string): boolean {
    return PERIOD_PATTERN.test(key);
  }

  static containing(instant: Date): Period {
    return new Period(instant.getUTCFullYear(), instant.getUTCMonth() + 1);
  }

  get key(): string {
    return `${String(this.year).padStart(4, '0')}-${String(this.month).padStart(2, '0')}`;
  }
  get start(): Date {
    return new Date(Date.UTC(this.year, this.month - 1, 1));
  }
  /** Exclusive end: the first instant of the next period. */
  get end(): Date {
    return new Date(Date.UTC(this.year, this.month, 1));
  }
  contains(instant: Date): boolean {
    return instant >= this.start && instant < this.end;
  }
  next(): Period {
    return this.month === 12 ? new Period(this.year + 1, 1) : new Period(this.year, this.month + 1);
  }
  previous(): Period {
    return this.month === 1 ? new Period(this.year - 1, 12) : new Period(this.year, this.month - 1);
  }
  toString(): string {
    return this.key;
  }
}
