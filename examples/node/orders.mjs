#!/usr/bin/env node
// Prints your first page of orders from the partner API as JSON, with Node.js 20's built-in
// fetch (no npm packages).
//
// Settings come from the environment:
//   PARTNER_TOKEN_URL      the token endpoint, e.g. https://auth.example.com/oauth2/token
//   PARTNER_API_URL        the API's base URL, e.g. https://api.example.com
//   PARTNER_CLIENT_ID      your client id
//   PARTNER_CLIENT_SECRET  your client secret (never printed)
//
// `TokenCache` and `PartnerApi` are the parts to copy into a long-running program: the token is
// reused until shortly before it expires, and renewed then.

const TIMEOUT_MS = 30_000;
const RENEW_BEFORE_MS = 60_000; // renew this long before expiry (at most half the lifetime)
const RATE_LIMIT_RETRIES = 3;
const LONGEST_WAIT_S = 60;

/** An error to show the user; it never contains the secret or a token. */
class PartnerError extends Error {}

/** RFC 6749 §2.3.1: the id and secret are form-urlencoded before HTTP Basic. */
const formEncode = (text) => new URLSearchParams({ v: text }).toString().slice(2);

class TokenCache {
  #tokenUrl;
  #authorization;
  #token = null;
  #renewAt = 0;
  #inFlight = null;

  constructor(tokenUrl, clientId, clientSecret) {
    this.#tokenUrl = tokenUrl;
    const credentials = `${formEncode(clientId)}:${formEncode(clientSecret)}`;
    this.#authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }

  /** A token that is not due for renewal. Callers that ask during a renewal share it. */
  async get() {
    if (this.#token !== null && Date.now() < this.#renewAt) return this.#token;
    this.#inFlight ??= this.#fetch().finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }

  /** Drops `token` after the API refused it (unless it was already replaced). */
  forget(token) {
    if (this.#token === token) this.#token = null;
  }

  async #fetch() {
    let response;
    for (let attempt = 0; ; attempt++) {
      const sent = Date.now();
      response = await fetch(this.#tokenUrl, {
        method: 'POST',
        headers: { Authorization: this.#authorization, Accept: 'application/json' },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
        redirect: 'error',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      if (response.status === 429 && attempt < RATE_LIMIT_RETRIES) {
        await waitAsAsked(response, 'the token endpoint');
        continue;
      }
      if (response.status !== 200) break;
      const body = await response.json();
      const lifetimeMs = body.expires_in * 1000;
      this.#token = body.access_token;
      this.#renewAt = sent + lifetimeMs - Math.min(RENEW_BEFORE_MS, lifetimeMs / 2);
      return this.#token;
    }
    // RFC 6749 §5.2: {"error": "invalid_client", "error_description": "..."}.
    const body = await jsonOrEmpty(response);
    const error = body.error ?? 'unknown';
    let message = `the token endpoint answered ${response.status}: ${error}`;
    if (body.error_description) message += ` (${body.error_description})`;
    if (error === 'invalid_client') message += '; check PARTNER_CLIENT_ID and PARTNER_CLIENT_SECRET';
    throw new PartnerError(message);
  }
}

class PartnerApi {
  #apiUrl;
  #tokens;

  constructor(apiUrl, tokens) {
    this.#apiUrl = apiUrl.replace(/\/+$/, '');
    this.#tokens = tokens;
  }

  async get(path) {
    let renewed = false;
    for (let attempt = 0; ; ) {
      const token = await this.#tokens.get();
      const response = await fetch(this.#apiUrl + path, {
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      if (response.status === 200) return response.json();
      const challenge = response.headers.get('www-authenticate') ?? '';
      if (response.status === 401 && challenge.includes('invalid_token') && !renewed) {
        // RFC 6750: the token was refused (its signing key revoked, say). Forget it, get a
        // new one and try once more.
        this.#tokens.forget(token);
        renewed = true;
        continue;
      }
      if (response.status === 429 && attempt < RATE_LIMIT_RETRIES) {
        attempt++;
        await waitAsAsked(response, 'the partner API');
        continue;
      }
      if (response.status === 401) {
        throw new PartnerError(`the partner API refused the token (401): ${challenge}`);
      }
      if (response.status === 403) {
        // Bearer error="insufficient_scope", scope="orders:read".
        throw new PartnerError(
          `the partner API answered 403 insufficient_scope: the client lacks a scope (${challenge})`,
        );
      }
      if (response.status === 429) {
        throw new PartnerError('the partner API is still rate limiting this client (429)');
      }
      // RFC 9457 problem+json: {"title": ..., "detail": ...}.
      const problem = await jsonOrEmpty(response);
      throw new PartnerError(
        `the partner API answered ${response.status}: ${problem.detail ?? problem.title ?? ''}`,
      );
    }
  }
}

/** Sleeps as long as a 429's Retry-After asks (delta-seconds), within reason. */
async function waitAsAsked(response, who) {
  const asked = Number.parseInt(response.headers.get('retry-after') ?? '1', 10);
  const seconds = Math.min(Number.isNaN(asked) ? 1 : Math.max(asked, 0), LONGEST_WAIT_S);
  console.error(`rate limited by ${who}; retrying in ${seconds} s`);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

async function jsonOrEmpty(response) {
  try {
    const body = await response.json();
    return body !== null && typeof body === 'object' ? body : {};
  } catch {
    return {};
  }
}

function setting(name) {
  const value = process.env[name];
  if (!value) throw new PartnerError(`${name} is not set`);
  return value;
}

try {
  const tokens = new TokenCache(
    setting('PARTNER_TOKEN_URL'),
    setting('PARTNER_CLIENT_ID'),
    setting('PARTNER_CLIENT_SECRET'),
  );
  const api = new PartnerApi(setting('PARTNER_API_URL'), tokens);
  const orders = await api.get('/v1/orders'); // {"items": [...], "next_cursor": ...}
  console.log(JSON.stringify(orders, null, 2));
} catch (err) {
  // fetch's own errors (connection refused, timeout) name the URL, never the credentials.
  const cause = err.cause?.message ? ` (${err.cause.message})` : '';
  console.error(`error: ${err instanceof PartnerError ? err.message : `could not reach the service: ${err.message}${cause}`}`);
  process.exitCode = 1;
}
