import { ValidationError } from '../domain/errors';
import { Period, PERIOD_RANGE, PERIOD_SHAPE } from '../domain/period';
import type { Clock } from './ports/clock';

/** A period named by a caller (query string, body, CLI): 400 `invalid_period` unless it is YYYY-MM. */
export function parsePeriodInput(text: unknown, field = 'period'): Period {
  if (typeof text !== 'string' || !Period.isValidKey(text)) {
    const range = typeof text === 'string' && PERIOD_SHAPE.test(text) ? ` from ${PERIOD_RANGE.first} to ${PERIOD_RANGE.last}` : '';
    const message = `${field} must be YYYY-MM${range}${typeof text === 'string' ? `; got "${text.slice(0, 32)}"` : ''}`;
    throw new ValidationError('invalid_period', message, [{ field, code: 'invalid_period', message }]);
  }
  return Period.parse(text);
}

/** `?period=`: the named period, or the current one when absent. */
export function resolvePeriod(text: string | undefined, clock: Clock): Period {
  return text === undefined || text === '' ? Period.containing(clock.now()) : parsePeriodInput(text);
}
