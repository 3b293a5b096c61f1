#!/usr/bin/env python3
"""Prints your first page of orders from the partner API as JSON, with `requests`, calling it
with an API key: the key goes in the X-API-Key header of every request, and there is no token to
get, cache or renew.

Settings come from the environment:
  PARTNER_API_URL   the API's base URL, e.g. https://api.example.com
  PARTNER_API_KEY   your API key, pak_... (never printed)

`PartnerApi` is the part to copy into a long-running program: keep one per process, so that its
session reuses connections.
"""

import json
import os
import sys
import time

import requests

TIMEOUT = (10, 30)  # seconds to connect, seconds to wait for an answer
RETRIES = 3  # a 429 or 503 is tried again this many times, after its Retry-After
LONGEST_WAIT = 60


class PartnerError(Exception):
    """An error to show the user; it never contains the key."""


class PartnerApi:
    """GET requests to the partner API with an API key."""

    def __init__(self, session, api_url, api_key):
        self._session = session
        self._api_url = api_url.rstrip("/")
        self._api_key = api_key

    def get(self, path, params=None):
        attempt = 0
        while True:
            response = self._session.get(
                self._api_url + path,
                params=params,
                headers={"X-API-Key": self._api_key, "Accept": "application/json"},
                timeout=TIMEOUT,
                allow_redirects=False,
            )
            if response.status_code == 200:
                return response.json()
            # 429: too many requests; 503: the key cannot be checked right now.
            if response.status_code in (429, 503) and attempt < RETRIES:
                attempt += 1
                wait_as_asked(response)
                continue
            challenge = response.headers.get("WWW-Authenticate", "")
            if response.status_code == 401:
                # RFC 6750: Bearer error="invalid_token". A key does not renew: it is wrong
                # or was revoked.
                raise PartnerError(
                    f"the partner API refused the key (401): check PARTNER_API_KEY ({challenge})"
                )
            if response.status_code == 403:
                # Bearer error="insufficient_scope", scope="orders:read".
                raise PartnerError(
                    f"the partner API answered 403 insufficient_scope: the key lacks a scope ({challenge})"
                )
            if response.status_code in (429, 503):
                raise PartnerError(
                    f"the partner API still answers {response.status_code}; try again later"
                )
            # RFC 9457 problem+json: {"title": ..., "detail": ...}.
            problem = json_or_empty(response)
            detail = problem.get("detail") or problem.get("title") or ""
            raise PartnerError(f"the partner API answered {response.status_code}: {detail}")


def wait_as_asked(response):
    """Sleeps as long as a 429's or 503's Retry-After asks (delta-seconds), within reason."""
    try:
        seconds = int(response.headers.get("Retry-After", "1"))
    except ValueError:
        seconds = 1
    seconds = min(max(seconds, 0), LONGEST_WAIT)
    why = "rate limited" if response.status_code == 429 else "the partner API is unavailable (503)"
    print(f"{why}; retrying in {seconds} s", file=sys.stderr)
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
        api_url = setting("PARTNER_API_URL")
        api_key = setting("PARTNER_API_KEY")
        if not api_key.isascii() or not api_key.isprintable() or " " in api_key:
            raise PartnerError("PARTNER_API_KEY has a character no key has: copy it again")
        api = PartnerApi(requests.Session(), api_url, api_key)
        orders = api.get("/v1/orders")  # {"items": [...], "next_cursor": ...}
    except PartnerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except requests.RequestException as err:
        # Connection refused, timeout, TLS: the message names the URL, never the key.
        print(f"error: could not reach the service: {err}", file=sys.stderr)
        return 1
    print(json.dumps(orders, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
