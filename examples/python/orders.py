#!/usr/bin/env python3
"""Prints your first page of orders from the partner API as JSON, with `requests`.

Settings come from the environment:
  PARTNER_TOKEN_URL      the token endpoint, e.g. https://auth.example.com/oauth2/token
  PARTNER_API_URL        the API's base URL, e.g. https://api.example.com
  PARTNER_CLIENT_ID      your client id
  PARTNER_CLIENT_SECRET  your client secret (never printed)

`TokenCache` and `PartnerApi` are the parts to copy into a long-running program: the token is
reused until shortly before it expires, and renewed then.
"""

import json
import os
import sys
import threading
import time
from urllib.parse import quote_plus

import requests

TIMEOUT = (10, 30)  # seconds to connect, seconds to wait for an answer
RENEW_BEFORE = 60  # seconds before expiry a token is renewed (at most half its lifetime)
RATE_LIMIT_RETRIES = 3
LONGEST_WAIT = 60


class PartnerError(Exception):
    """An error to show the user; it never contains the secret or a token."""


class TokenCache:
    """An access token from the client-credentials grant, kept until shortly before it expires.

    The lock makes threads that need a token at the same moment share one token request.
    """

    def __init__(self, session, token_url, client_id, client_secret):
        self._session = session
        self._token_url = token_url
        # RFC 6749 §2.3.1: the id and secret are form-urlencoded before HTTP Basic.
        self._auth = (quote_plus(client_id), quote_plus(client_secret))
        self._lock = threading.Lock()
        self._token = None
        self._renew_at = 0.0

    def get(self):
        with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._fetch()
            return self._token

    def forget(self, token):
        """Drops `token` after the API refused it (unless another thread already replaced it)."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self):
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            sent = time.monotonic()
            response = self._session.post(
                self._token_url,
                data={"grant_type": "client_credentials"},
                auth=self._auth,
                headers={"Accept": "application/json"},
                timeout=TIMEOUT,
                allow_redirects=False,
            )
            if response.status_code == 429 and attempt < RATE_LIMIT_RETRIES:
                wait_as_asked(response, "the token endpoint")
                continue
            break
        if response.status_code != 200:
            # RFC 6749 §5.2: {"error": "invalid_client", "error_description": "..."}.
            body = json_or_empty(response)
            error = body.get("error", "unknown")
            message = f"the token endpoint answered {response.status_code}: {error}"
            if body.get("error_description"):
                message += f" ({body['error_description']})"
            if error == "invalid_client":
                message += "; check PARTNER_CLIENT_ID and PARTNER_CLIENT_SECRET"
            raise PartnerError(message)
        body = response.json()
        lifetime = body["expires_in"]
        self._token = body["access_token"]
        self._renew_at = sent + lifetime - min(RENEW_BEFORE, lifetime / 2)


class PartnerApi:
    """GET requests to the partner API with a cached token."""

    def __init__(self, session, api_url, tokens):
        self._session = session
        self._api_url = api_url.rstrip("/")
        self._tokens = tokens

    def get(self, path, params=None):
        renewed = False
        attempt = 0
        while True:
            token = self._tokens.get()
            response = self._session.get(
                self._api_url + path,
                params=params,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=TIMEOUT,
                allow_redirects=False,
            )
            if response.status_code == 200:
                return response.json()
            challenge = response.headers.get("WWW-Authenticate", "")
            if response.status_code == 401 and "invalid_token" in challenge and not renewed:
                # RFC 6750: the token was refused (its signing key revoked, say). Forget it,
                # get a new one and try once more.
                self._tokens.forget(token)
                renewed = True
                continue
            if response.status_code == 429 and attempt < RATE_LIMIT_RETRIES:
                attempt += 1
                wait_as_asked(response, "the partner API")
                continue
            if response.status_code == 401:
                raise PartnerError(f"the partner API refused the token (401): {challenge}")
            if response.status_code == 403:
                # Bearer error="insufficient_scope", scope="orders:read".
                raise PartnerError(
                    f"the partner API answered 403 insufficient_scope: the client lacks a scope ({challenge})"
                )
            if response.status_code == 429:
                raise PartnerError("the partner API is still rate limiting this client (429)")
            # RFC 9457 problem+json: {"title": ..., "detail": ...}.
            problem = json_or_empty(response)
            detail = problem.get("detail") or problem.get("title") or ""
            raise PartnerError(f"the partner API answered {response.status_code}: {detail}")


def wait_as_asked(response, who):
    """Sleeps as long as a 429's Retry-After asks (delta-seconds), within reason."""
    try:
        seconds = int(response.headers.get("Retry-After", "1"))
    except ValueError:
        seconds = 1
    seconds = min(max(seconds, 0), LONGEST_WAIT)
    print(f"rate limited by {who}; retrying in {seconds} s", file=sys.stderr)
    time.sleep(seconds)


def json_or_empty(response):
    try:
        body = response.json()
        return body if isinstance(body, dict) else {}
    except ValueError:
        return {}


def setting(name):
    value = os.environ.get(name)
    if not value:
        raise PartnerError(f"{name} is not set")
    return value


def main():
    try:
        session = requests.Session()
        tokens = TokenCache(
            session,
            setting("PARTNER_TOKEN_URL"),
            setting("PARTNER_CLIENT_ID"),
            setting("PARTNER_CLIENT_SECRET"),
        )
        api = PartnerApi(session, setting("PARTNER_API_URL"), tokens)
        orders = api.get("/v1/orders")  # {"items": [...], "next_cursor": ...}
    except PartnerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except requests.RequestException as err:
        # Connection refused, timeout, TLS: the message names the URL, never the credentials.
        print(f"error: could not reach the service: {err}", file=sys.stderr)
        return 1
    print(json.dumps(orders, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
