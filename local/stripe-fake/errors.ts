/**
 * Stripe-shaped API errors.
 *
 * stripe-node picks its error class from the HTTP status first and the
 * `error.type` second (see `generateV1Error` in the SDK): 429 -> RateLimit,
 * 400/404 + `idempotency_error` -> Idempotency, 400/404 -> InvalidRequest,
 * 401 -> Authentication, anything else -> StripeAPIError. So both the status
 * and the type below matter to callers.
 */

export type StripeErrorType = 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';

export interface StripeErrorJson {
  error: {
    type: StripeErrorType;
    message: string;
    code?: string;
    param?: string;
    doc_url?: string;
  };
}

export interface FakeErrorOptions {
  code?: string;
  param?: string;
  /**
   * True when the request was rejected before the endpoint began executing
   * (malformed or missing parameters). Stripe does not save such results under
   * the idempotency key, so a corrected retry with the same key is allowed to run.
   */
  preExecution?: boolean;
}

export class FakeStripeError extends Error {
  readonly code: string | undefined;
  readonly param: string | undefined;
  readonly preExecution: boolean;

  constructor(
    readonly status: number,
    readonly type: StripeErrorType,
    message: string,
    options: FakeErrorOptions = {},
  ) {
    super(message);
    this.name = 'FakeStripeError';
    this.code = options.code;
    this.param = options.param;
    this.preExecution = options.preExecution ?? false;
  }

  toJSON(): StripeErrorJson {
    const error: StripeErrorJson['error'] = { type: this.type, message: this.message };
    if (this.code !== undefined) {
      error.code = this.code;
      error.doc_url = `https://stripe.com/docs/error-codes/${this.code.replace(/_/g, '-')}`;
    }
    if (this.param !== undefined) error.param = this.param;
    return { error };
  }
}

// ---- constructors for the errors the fake raises ------------------------------------------

export function parameterMissing(param: string): FakeStripeError {
  return new FakeStripeError(400, 'invalid_request_error', `Missing required param: ${param}.`, {
    code: 'parameter_missing',
    param,
    preExecution: true,
  });
}

export function parameterUnknown(param: string): FakeStripeError {
  return new FakeStripeError(
    400,
    'invalid_request_error',
    `Received unknown parameter: ${param} (the Stripe fake does not support it; see local/stripe-fake/README.md)`,
    { code: 'parameter_unknown', param, preExecution: true },
  );
}

export function parameterInvalid(param: string, message: string, code = 'parameter_invalid_string'): FakeStripeError {
  return new FakeStripeError(400, 'invalid_request_error', message, { code, param, preExecution: true });
}

/** A referenced object does not exist. Path lookups answer 404, parameter references 400 (as Stripe does). */
export function resourceMissing(kind: string, id: string, param?: string): FakeStripeError {
  return new FakeStripeError(param === undefined ? 404 : 400, 'invalid_request_error', `No such ${kind}: '${id}'`, {
    code: 'resource_missing',
    param: param ?? 'id',
  });
}

export function invalidRequest(message: string, code?: string, param?: string): FakeStripeError {
  return new FakeStripeError(400, 'invalid_request_error', message, { code, param });
}

export function unrecognizedUrl(method: string, path: string): FakeStripeError {
  return new FakeStripeError(
    404,
    'invalid_request_error',
    `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
    { preExecution: true },
  );
}

export function missingApiKey(): FakeStripeError {
  return new FakeStripeError(
    401,
    'invalid_request_error',
    "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
    { preExecution: true },
  );
}

/**
 * Stripe's amounts hold at most eight digits of minor units (docs.stripe.com/currencies, "The amount
 * value supports up to eight digits (e.g., a value of 99999999 for a USD charge of $999,999.99)").
 */
export const MAX_AMOUNT_MINOR = 99_999_999;

/** Like Stripe's "Amount must be no more than $999,999.99", naming the parameter (e.g. `lines[3][amount]`). */
export function amountTooLarge(param: string, amount: number): FakeStripeError {
  return new FakeStripeError(
    400,
    'invalid_request_error',
    `Amount must be no more than ${MAX_AMOUNT_MINOR} in absolute value (amounts hold at most eight digits of minor units, e.g. $999,999.99); ${param} was ${amount}.`,
    { code: 'amount_too_large', param, preExecution: true },
  );
}

/** Real Stripe answers rate limiting with type invalid_request_error and code rate_limit. */
export function rateLimited(): FakeStripeError {
  return new FakeStripeError(
    429,
    'invalid_request_error',
    'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.',
    { code: 'rate_limit', preExecution: true },
  );
}

export function internalError(): FakeStripeError {
  return new FakeStripeError(500, 'api_error', 'An unknown error occurred (injected by the Stripe fake).', {
    preExecution: true,
  });
}
