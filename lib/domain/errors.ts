/**
 * The few kinds of failure a caller can act on. Each maps to one HTTP status in ONE place
 * (lib/platform/http.ts); anything else is a 5xx whose message never leaves the service.
 */
export interface ErrorDetail {
  index?: number;
  field?: string;
  code: string;
  message: string;
}

/** A failure the caller can act on: a code, a sentence, and per-field details. It knows no transport. */
export abstract class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The input is malformed or breaks a rule. */
export class ValidationError extends DomainError {}
/** No usable credentials. */
export class UnauthorizedError extends DomainError {
  constructor(message = 'a valid API key is required: send "Authorization: Bearer <key>"', code = 'unauthorized') {
    super(code, message);
  }
}
/** Credentials, but not for this. */
export class ForbiddenError extends DomainError {}
export class NotFoundError extends DomainError {}
/** The request conflicts with the state of things (a rule about time, order or uniqueness). */
export class ConflictError extends DomainError {}
export class PayloadTooLargeError extends DomainError {}
export class UnsupportedMediaTypeError extends DomainError {}
/** The caller went past a limit of its key; the same request succeeds after `retryAfterSeconds`. */
export class RateLimitedError extends DomainError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('rate_limited', message);
  }
}
/** A dependency is briefly unavailable; the caller may retry the same request safely. */
export class UnavailableError extends DomainError {}
