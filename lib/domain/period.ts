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

/**
 * How many earlier periods an invoice corrects: enough that every period an event can still land
 * in is looked at by a later invoice. An event of a period arrives at most `windowMs` after that
 * period's end (the late-event window); the invoice of the k-th period after it is computed at
 * least (the k shortest months in a row) + `graceMs` after that end. The smallest k for which that
 * is later than the window: 2 for 35 days, 4 for 90 days, 12 for 365 days.
 */
export function correctionLookback(windowMs: number, graceMs: number): number {
  for (let k = 1; k <= MAX_CORRECTION_LOOKBACK; k++) if (shortestMonths(k) + graceMs > windowMs) return k;
  throw new RangeError(`a late-event window of ${Math.round(windowMs / 86_400_000)} days needs more than ${MAX_CORRECTION_LOOKBACK} periods of corrections`);
}
/** At most a year of periods is corrected: a year of baselines moves in one transaction with the invoice. */
export const MAX_CORRECTION_LOOKBACK = 12;

/** The shortest time k whole months in a row can take (from the ends of twelve consecutive months of a common year). */
function shortestMonths(k: number): number {
  let shortest = Infinity;
  for (let from = Period.parse('2026-01'), i = 0; i < 12; i++, from = from.next()) {
    let to = from;
    for (let j = 0; j < k; j++) to = to.next();
    shortest = Math.min(shortest, to.end.getTime() - from.end.getTime());
  }
  return shortest;
}
