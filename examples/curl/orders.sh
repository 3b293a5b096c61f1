#!/usr/bin/env bash
# Prints your first page of orders from the partner API as JSON, with curl and jq.
#
# Settings come from the environment:
#   PARTNER_TOKEN_URL      the token endpoint, e.g. https://auth.example.com/oauth2/token
#   PARTNER_API_URL        the API's base URL, e.g. https://api.example.com
#   PARTNER_CLIENT_ID      your client id
#   PARTNER_CLIENT_SECRET  your client secret (never printed, never on a command line)
#
# Each run of a shell script is a new process, so the access token is cached in a file
# (owner-only) and reused by later runs until shortly before it expires: a cron job calling the
# API every minute asks for a token every ten minutes, not every minute.
set -euo pipefail

: "${PARTNER_TOKEN_URL:?is not set}" "${PARTNER_API_URL:?is not set}"
: "${PARTNER_CLIENT_ID:?is not set}" "${PARTNER_CLIENT_SECRET:?is not set}"

# SHA-256 of stdin, in hex: sha256sum on Linux, shasum on macOS.
sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }

CACHE_DIR="${PARTNER_TOKEN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/partner-api}"
# One cache file per token endpoint and client.
CACHE_FILE="$CACHE_DIR/token-$(printf '%s %s' "$PARTNER_TOKEN_URL" "$PARTNER_CLIENT_ID" | sha256 | cut -c 1-16).json"
RENEW_BEFORE=60        # seconds before expiry a token is renewed (at most half its lifetime)
RATE_LIMIT_RETRIES=3   # a 429 is tried again this many times, after its Retry-After
LONGEST_WAIT=60

# Everything we write (cache, response files) is readable by us alone.
umask 077
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fail() { echo "error: $*" >&2; exit 1; }

# Form-urlencodes stdin (RFC 6749 §2.3.1 asks for it on the id and secret before HTTP Basic).
form_encode() { jq -sRr @uri; }

# One HTTP request with curl: the body goes to $WORK/body, the headers to $WORK/headers, and the
# status is printed. Credentials are handed to curl on stdin as a config file, so they never
# appear on a command line (where `ps` would show them).
http() {
    curl --silent --show-error --connect-timeout 10 --max-time 30 --config - \
        --dump-header "$WORK/headers" --output "$WORK/body" --write-out '%{http_code}' "$@" \
        || fail "could not reach ${*: -1}"
}

retry_after() {
    local seconds
    seconds=$(sed -n 's/^[Rr]etry-[Aa]fter:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$WORK/headers")
    seconds=${seconds:-1}
    echo $((seconds < LONGEST_WAIT ? seconds : LONGEST_WAIT))
}

# Fetches a token with the client-credentials grant and caches it.
fetch_token() {
    local id secret status attempt=0
    id=$(printf '%s' "$PARTNER_CLIENT_ID" | form_encode)
    secret=$(printf '%s' "$PARTNER_CLIENT_SECRET" | form_encode)
    while :; do
        status=$(printf 'user = "%s:%s"\n' "$id" "$secret" \
            | http --data grant_type=client_credentials -H 'Accept: application/json' "$PARTNER_TOKEN_URL")
        if [ "$status" = 429 ] && [ "$attempt" -lt "$RATE_LIMIT_RETRIES" ]; then
            attempt=$((attempt + 1)); delay=$(retry_after)
            echo "rate limited by the token endpoint; retrying in $delay s" >&2; sleep "$delay"
            continue
        fi
        break
    done
    if [ "$status" != 200 ]; then
        # RFC 6749 §5.2: {"error": "invalid_client", "error_description": "..."}.
        error=$(jq -r '.error // "unknown"' "$WORK/body" 2>/dev/null || echo unknown)
        description=$(jq -r '.error_description // ""' "$WORK/body" 2>/dev/null || true)
        [ "$error" = invalid_client ] && description="$description; check PARTNER_CLIENT_ID and PARTNER_CLIENT_SECRET"
        fail "the token endpoint answered $status: $error ($description)"
    fi
    # Keep the token and the time to renew it (before it expires, never after).
    mkdir -p "$CACHE_DIR"
    jq --argjson now "$(date +%s)" --argjson before "$RENEW_BEFORE" \
        '{access_token, renew_at: ($now + .expires_in - ([$before, (.expires_in / 2 | floor)] | min))}' \
        "$WORK/body" > "$CACHE_FILE.new" || fail "the token response is not JSON"
    mv "$CACHE_FILE.new" "$CACHE_FILE"
}

# Prints a token that is not due for renewal: the cached one, or a new one.
token() {
    local renew_at
    renew_at=$(jq -r '.renew_at // 0' "$CACHE_FILE" 2>/dev/null || echo 0)
    case "$renew_at" in ''|*[!0-9]*) renew_at=0 ;; esac   # missing or damaged: renew
    if [ "$renew_at" -le "$(date +%s)" ]; then
        fetch_token
    fi
    jq -r '.access_token' "$CACHE_FILE"
}

# GET of the first page of orders with the token $1. The token goes to curl as a header on
# stdin, for the same reason as the secret.
get_orders() {
    printf 'header = "Authorization: Bearer %s"\n' "$1" \
        | http -H 'Accept: application/json' "${PARTNER_API_URL%/}/v1/orders"
}

attempt=0
renewed=no
while :; do
    access_token=$(token)
    status=$(get_orders "$access_token")
    case "$status" in
        200)
            jq . "$WORK/body"
            exit 0
            ;;
        401)
            # RFC 6750: WWW-Authenticate: Bearer error="invalid_token". The token was refused
            # (its signing key revoked, say): forget it, get a new one, and try once more.
            if [ "$renewed" = no ] && grep -qi '^www-authenticate:.*invalid_token' "$WORK/headers"; then
                renewed=yes
                rm -f "$CACHE_FILE"
                continue
            fi
            fail "the partner API refused the token (401): $(grep -i '^www-authenticate:' "$WORK/headers" | tr -d '\r')"
            ;;
        403)
            # Bearer error="insufficient_scope", scope="orders:read".
            fail "the partner API answered 403 insufficient_scope: the client needs the orders:read scope ($(grep -i '^www-authenticate:' "$WORK/headers" | tr -d '\r'))"
            ;;
        429)
            if [ "$attempt" -lt "$RATE_LIMIT_RETRIES" ]; then
                attempt=$((attempt + 1)); delay=$(retry_after)
                echo "rate limited; retrying in $delay s" >&2; sleep "$delay"
                continue
            fi
            fail "the partner API is still rate limiting this client (429); try again later"
            ;;
        *)
            # RFC 9457 problem+json: {"title": ..., "detail": ...}.
            fail "the partner API answered $status: $(jq -r '.detail // .title // empty' "$WORK/body" 2>/dev/null)"
            ;;
    esac
done
