/**
 * Stripe-looking identifiers (`cus_...`, `in_...`, `req_...`).
 *
 * Random rather than sequential on purpose: the product must not be able to
 * rely on ordering or guessability of ids, and random ids also keep objects
 * from different fake instances (or after a reset) from colliding in logs.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomString(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  // 256 % 62 bias is irrelevant for a fake's ids.
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return out;
}

export function newId(prefix: string): string {
  return `${prefix}_${randomString(24)}`;
}

export function newRequestId(): string {
  return `req_${randomString(14)}`;
}

/** Customer invoice prefixes are 8 upper-case hex-ish characters in Stripe. */
export function newInvoicePrefix(): string {
  return randomBytes(4).toString('hex').toUpperCase();
}
