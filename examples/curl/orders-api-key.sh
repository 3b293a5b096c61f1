#!/usr/bin/env bash
# Prints your first page of orders from the partner API as JSON, with curl and jq, calling it
# with an API key: the key goes in the X-API-Key header of every request, and there is no token
# to get, cache or renew.
#
# Settings come from the environment:
#   PARTNER_API_URL   the API's base URL, e.g. https://api.example.com
#   PARTNER_API_KEY   your API key, pak_... (never printed, never on a command line)
set -euo pipefail

: "${PARTNER_API_URL:?is not set}" "${PARTNER_API_KEY:?is not set}"

RETRIES=3         # a 429 or 503 is tried again this many times, after its Retry-After
LONGEST_WAIT=60

# Everything we write (response files) is readable by us alone.
umask 077
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fail() { echo "error: $*" >&2; exit 1; }

# A key has no space, control character, quote or backslash; one that does was pasted wrong (and
# would break the curl config below).
case "$PARTNER_API_KEY" in
    *[![:graph:]]* | *'"'* | *'\'*) fail "PARTNER_API_KEY has a character no key has: copy it again" ;;
esac

retry_after() {
    local seconds
    seconds=$(sed -n 's/^[Rr]etry-[Aa]fter:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$WORK/headers")
    seconds=${seconds:-1}
    echo $((seconds < LONGEST_WAIT ? seconds : LONGEST_WAIT))
}

# GET of the first page of orders: the body goes to $WORK/body, the headers to $WORK/headers, and
# the status is printed. The key is handed to curl on stdin as a config file, so it never
# appears on a command line (where `ps` would show it).
get_orders() {
    printf 'header = "X-API-Key: %s"\n' "$PARTNER_API_KEY" \
        | curl --silent --show-error --connect-timeout 10 --max-time 30 --config - \
            --dump-header "$WORK/headers" --output "$WORK/body" --write-out '%{http_code}' \
            -H 'Accept: application/json' "${PARTNER_API_URL%/}/v1/orders" \
        || fail "could not reach ${PARTNER_API_URL%/}/v1/orders"
}

attempt=0
while :; do
    status=$(get_orders)
    case "$status" in
        200)
            jq . "$WORK/body"
            exit 0
            ;;
        401)
            # RFC 6750: WWW-Authenticate: Bearer error="invalid_token". A key does not renew:
            # it is wrong or was revoked.
            fail "the partner API refused the key (401): check PARTNER_API_KEY ($(grep -i '^www-authenticate:' "$WORK/headers" | tr -d '\r'))"
            ;;
        403)
            # Bearer error="insufficient_scope", scope="orders:read".
            fail "the partner API answered 403 insufficient_scope: the key needs the orders:read scope ($(grep -i '^www-authenticate:' "$WORK/headers" | tr -d '\r'))"
            ;;
        429 | 503)
            # 429: too many requests; 503: the key cannot be checked right now.
            if [ "$attempt" -lt "$RETRIES" ]; then
                attempt=$((attempt + 1)); delay=$(retry_after)
                if [ "$status" = 429 ]; then why="rate limited"; else why="the partner API is unavailable (503)"; fi
                echo "$why; retrying in $delay s" >&2; sleep "$delay"
                continue
            fi
            fail "the partner API still answers $status; try again later"
            ;;
        *)
            # RFC 9457 problem+json: {"title": ..., "detail": ...}.
            fail "the partner API answered $status: $(jq -r '.detail // .title // empty' "$WORK/body" 2>/dev/null)"
            ;;
    esac
done
