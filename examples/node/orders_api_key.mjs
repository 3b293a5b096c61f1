#!/usr/bin/env node
// Prints your first page of orders from the partner API as JSON, with Node.js 20's built-in
// fetch (no npm packages), calling it with an API key: the key goes in the X-API-Key header of
// every request, and there is no token to get, cache or renew.
//
// Settings come from the environment:
//   PARTNER_API_URL   the API's base URL, e.g. https://api.example.com
//   PARTNER_API_KEY   your API key, pak_... (never printed)
//
// `PartnerApi` is the part to copy into a long-running program.

const TIMEOUT_MS = 30_000;
const RETRIES = 3; // a 429 or 503 is tried again this many times, after its Retry-After
const LONGEST_WAIT_S = 60;

/** An error to show the user; it never contains the key. */
class PartnerError extends Error {}

class PartnerApi {
  #apiUrl;
  #apiKey;

  constructor(apiUrl, apiKey) {
    this.#apiUrl = apiUrl.replace(/\/+$/, '');
    this.#apiKey = apiKey;
  }

  async get(path) {
    for (let attempt = 0; ; ) {
      const response = await fetch(this.#apiUrl + path, {
        headers: { 'X-API-Key': this.#apiKey, Accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      if (response.status === 200) return response.json();
      // 429: too many requests; 503: the key cannot be checked right now.
      const retryable = response.status === 429 || response.status === 503;
      if (retryable && attempt < RETRIES) {
        attempt++;
        await waitAsAsked(response);
        continue;
      }
      const challenge = response.headers.get('www-authenticate') ?? '';
      if (response.status === 401) {
        // RFC 6750: Bearer error="invalid_token". A key does not renew: it is wrong or
        // was revoked.
        throw new PartnerError(
          `the partner API refused the key (401): check PARTNER_API_KEY (${challenge})`,
        );
      }
      if (response.status === 403) {
        // Bearer error="insufficient_scope", scope="orders:read".
        throw new PartnerError(
          `the partner API answered 403 insufficient_scope: the key lacks a scope (${challenge})`,
        );
      }
      if (retryable) {
        throw new PartnerError(`the partner API still answers ${response.status}; try again later`);
      }
      // RFC 9457 problem+json: {"title": ..., "detail": ...}.
      const problem = await jsonOrEmpty(response);
      throw new PartnerError(
        `the partner API answered ${response.status}: ${problem.detail ?? problem.title ?? ''}`,
      );
    }
  }
}

/** Sleeps as long as a 429's or 503's Retry-After asks (delta-seconds), within reason. */
async function waitAsAsked(response) {
  const asked = Number.parseInt(response.headers.get('retry-after') ?? '1', 10);
  const seconds = Math.min(Number.isNaN(asked) ? 1 : Math.max(asked, 0), LONGEST_WAIT_S);
  const why = response.status === 429 ? 'rate limited' : 'the partner API is unavailable (503)';
  console.error(`${why}; retrying in ${seconds} s`);
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
  const apiUrl = setting('PARTNER_API_URL');
  const apiKey = setting('PARTNER_API_KEY');
  // fetch would refuse such a header with a message that shows the key.
  if (!/^[!-~]+$/.test(apiKey)) {
    throw new PartnerError('PARTNER_API_KEY has a character no key has: copy it again');
  }
  const api = new PartnerApi(apiUrl, apiKey);
  const orders = await api.get('/v1/orders'); // {"items": [...], "next_cursor": ...}
  console.log(JSON.stringify(orders, null, 2));
} catch (err) {
  // fetch's own errors (connection refused, timeout) name the URL, never the key.
  const cause = err.cause?.message ? ` (${err.cause.message})` : '';
  console.error(`error: ${err instanceof PartnerError ? err.message : `could not reach the service: ${err.message}${cause}`}`);
  process.exitCode = 1;
}
