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

export abstract class DomainError extends Error {
  abstract readonly status: number;
  constructor(
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends DomainError {
  readonly status = 400;
}
export class UnauthorizedError extends DomainError {
  readonly status = 401;
  constructor(message = 'a valid API key is required: send "Authorization: Bearer <key>"') {
    super('unauthorized', message);
  }
}
export class ForbiddenError extends DomainError {
  readonly status = 403;
}
export class NotFoundError extends DomainError {
  readonly status = 404;
}
export class ConflictError extends DomainError {
  readonly status = 409;
}
export class PayloadTooLargeError extends DomainError {
  readonly status = 413;
}
export class UnsupportedMediaTypeError extends DomainError {
  readonly status = 415;
}
/** A dependency is briefly unavailable; the caller may retry the same request safely. */
export class UnavailableError extends DomainError {
  readonly status = 503;
}
