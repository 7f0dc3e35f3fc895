/**
 * CSRF tokens bound to something only the right browser holds (an interaction uid, a session uid): an HMAC of it
 * under a server secret. Forms carry the token; the POST handler recomputes and compares in constant time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export class CsrfTokens {
  readonly #secret: string;
  constructor(secret: string) {
    this.#secret = secret;
  }
  issue(binding: string): string {
    return createHmac('sha256', this.#secret).update(`csrf:${binding}`).digest('base64url');
  }
  verify(binding: string, token: unknown): boolean {
    if (typeof token !== 'string' || token.length === 0 || token.length > 128) return false;
    const expected = Buffer.from(this.issue(binding));
    const given = Buffer.from(token);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }
}
