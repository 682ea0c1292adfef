import { ValidationError } from '../domain/errors';
import { SUBJECT_PATTERN, SUBJECT_RULE } from '../domain/events';

/**
 * 400 `invalid_customer_id` unless `id` could be a customer's. A module of its own: the use cases
 * that read a customer's data check the id without loading the customers API's input schema.
 */
export function checkCustomerId(id: string): void {
  if (!SUBJECT_PATTERN.test(id)) {
    const message = `customer id ${SUBJECT_RULE}`;
    throw new ValidationError('invalid_customer_id', message, [{ field: 'id', code: 'invalid_customer_id', message }]);
  }
}
