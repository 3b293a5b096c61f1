#!/usr/bin/env python3
"""A partner's client-credentials request with private_key_jwt (RFC 7523), made with authlib.

Prints the token service's JSON answer and exits 0 on success; on an OAuth error prints
{"http_status": ..., "error": ..., "error_description": ...} and exits 1.

    TOKEN_ENDPOINT=https://auth.example.com/oauth2/token \
    ISSUER=https://auth.example.com \
    CLIENT_ID=cl_... \
    PRIVATE_KEY_FILE=partner-key.pem \
    KEY_ID=acme-2026 \
    python3 private_key_jwt.py

PRIVATE_KEY_FILE is the partner's EC P-256 private key as PEM (PKCS#8 or SEC1); its public half is
what the partner registered as a JWK, with KEY_ID as its "kid". KEY_ID may be left out while
exactly one key is registered. Needs `pip install authlib requests`; written for authlib 1.9
(pinned in .ci/run), whose JWTs are made by joserfc, so the key is loaded as a joserfc `ECKey`:
given a PEM string, authlib 1.9 takes it for an RSA key. tests/e2e/real_clients.rs runs this
script against the real token service.

Two of authlib's defaults must be changed for this token service, and both are changed in
`assertion_auth` below:

- The audience. authlib addresses the assertion (`aud`) to the token endpoint URL, as RFC 7523
  suggested. This service accepts only its issuer identifier as `aud` (RFC 10070, which closed
  the audience-injection attacks on RFC 7523), and refuses the token endpoint URL with 401
  invalid_client. authlib's `PrivateKeyJWT(token_endpoint=...)` is the audience it signs for,
  not where the request is sent, so pass the issuer there. (Do not put "aud" in `claims=`
  instead: authlib stores the generated "jti" in that dict, so every later assertion would
  reuse it and be refused as a replay.)
- The lifetime. authlib's assertions live an hour; this service refuses any that lives longer
  than 5 minutes (exp - iat), since an assertion is for one request. `PrivateKeyJWT` does not
  pass a lifetime on, so the small subclass below does.

`--default-audience` keeps authlib's audience (the token endpoint) to show that it is refused.
"""

import json
import os
import sys

from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from joserfc.jwk import ECKey

ASSERTION_LIFETIME_SECONDS = 60


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """authlib's private_key_jwt, with assertions that live a minute instead of an hour."""

    def sign(self, auth, token_endpoint):
        # `token_endpoint` is the audience: the one given to the constructor, else the URL the
        # request goes to.
        return private_key_jwt_sign(
            auth.client_secret,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            alg=self.alg,
            header=self.headers,
            expires_in=ASSERTION_LIFETIME_SECONDS,
        )


def assertion_auth(issuer, key_id, default_audience=False):
    """Signs assertions with ES256 for the audience `issuer`, naming the key `key_id`."""
    audience = None if default_audience else issuer
    headers = {"kid": key_id} if key_id else None
    return ShortLivedPrivateKeyJWT(token_endpoint=audience, alg="ES256", headers=headers)


def main():
    token_endpoint = os.environ["TOKEN_ENDPOINT"]
    issuer = os.environ["ISSUER"]
    client_id = os.environ["CLIENT_ID"]
    with open(os.environ["PRIVATE_KEY_FILE"]) as pem:
        private_key = ECKey.import_key(pem.read())
    key_id = os.environ.get("KEY_ID")

    session = OAuth2Session(
        client_id,
        private_key,
        token_endpoint_auth_method=assertion_auth(
            issuer, key_id, default_audience="--default-audience" in sys.argv[1:]
        ),
    )
    # authlib raises on an error answer without its HTTP status; keep it for the report.
    statuses = []

    def remember_status(response):
        statuses.append(response.status_code)
        return response

    session.register_compliance_hook("access_token_response", remember_status)
    try:
        token = session.fetch_token(token_endpoint, grant_type="client_credentials")
    except OAuthError as err:
        print(
            json.dumps(
                {
                    "http_status": statuses[-1] if statuses else None,
                    "error": err.error,
                    "error_description": err.description,
                }
            )
        )
        return 1
    print(json.dumps(dict(token)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
