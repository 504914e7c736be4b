#!/usr/bin/env bash
# Schema-driven fuzzing: schemathesis over the service's own /openapi.json, every
# operation, every check, once with an admin token and once with a buyer token.
# Zero failures allowed: no 5xx, every status, header and body as documented, data
# outside the schema refused, data inside it accepted.
#
# Runs the debug binary (built by scripts/test-all.sh) on a throw-away SQLite file on
# a free loopback port, with a sale in place so that ids in the document exist.
# schemathesis comes from PyPI into a virtualenv outside the repository
# ($FLASH_SALE_VENV, default ~/.cache/flash-sale/venv), created when missing.
#
#   scripts/fuzz.sh                 FLASH_SALE_FUZZ_EXAMPLES (default 100) cases per
#                                   operation and phase, fixed seed (FLASH_SALE_FUZZ_SEED)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV="${FLASH_SALE_VENV:-$HOME/.cache/flash-sale/venv}"
EXAMPLES="${FLASH_SALE_FUZZ_EXAMPLES:-100}"
SEED="${FLASH_SALE_FUZZ_SEED:-20261206}"
BIN="${CARGO_TARGET_DIR:-target}/debug/flash-sale"

# Python 3.11.7's ast module trips over hypothesis's lambda descriptions ("AST
# constructor recursion depth mismatch"): a newer Python when there is one.
python=python3
for candidate in "$HOME"/.pyenv/versions/3.1[23]*/bin/python3 python3.13 python3.12; do
  if "$candidate" -c 'import venv' >/dev/null 2>&1; then python="$candidate"; break; fi
done
wanted="$("$python" -c 'import sys; print(sys.version.split()[0])')"
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION" \
  || [ "$("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)" != "$wanted" ]; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV (Python $wanted)" >&2
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
cargo build --locked --quiet -p flash-sale

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export FLASH_SALE__SERVER__BIND="127.0.0.1:$PORT"
export FLASH_SALE__DATABASE__URL="sqlite://$WORK/fuzz.db?mode=rwc"
export FLASH_SALE__AUTH__JWT_SECRET="fuzz-$(date +%s%N)"
export FLASH_SALE__LOG__LEVEL=warn
export FLASH_SALE__LOG__FORMAT=json
"$BIN" serve >"$WORK/service.log" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$URL/healthz" >/dev/null || {
  echo "error: the service did not start; its log:" >&2
  cat "$WORK/service.log" >&2
  exit 1
}

ADMIN="$("$BIN" token --sub fuzz-admin --role admin --ttl 2h)"
BUYER="$("$BIN" token --sub fuzz-buyer --role buyer --ttl 2h)"

# A live sale: event 1 with products 1 and 2, so that documented ids exist.
post() { # path body
  curl -fsS -X POST "$URL$1" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d "$2" >/dev/null
}
NOW="$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)"
LATER="$(date -u -d '+2 hours' +%Y-%m-%dT%H:%M:%SZ)"
post /api/v1/admin/events "{\"title\":\"fuzz sale\",\"starts_at\":\"$NOW\",\"ends_at\":\"$LATER\"}"
for title in one two; do
  post /api/v1/admin/events/1/products \
    "{\"title\":\"$title\",\"original_price\":2000,\"flash_price\":1000,\"stock\":1000000,\"per_user_limit\":100}"
done
post /api/v1/admin/events/1/online '{}'

status=0
# The admin stream is excluded: it answers an event stream that never ends, which a
# request-and-answer fuzzer can only time out on (tests/tests/e2e/console.rs covers it).
for role in admin buyer; do
  token="$ADMIN"
  [ "$role" = buyer ] && token="$BUYER"
  echo "schemathesis as $role: $EXAMPLES examples per operation, seed $SEED" >&2
  "$VENV/bin/st" --config-file scripts/schemathesis.toml --no-color run "$URL/openapi.json" \
    --checks all \
    --exclude-operation-id admin_stream \
    --header "Authorization: Bearer $token" \
    --max-examples "$EXAMPLES" \
    --seed "$SEED" \
    --workers 2 \
    --request-timeout 10 || status=1
done
if grep -q '"level":"ERROR"' "$WORK/service.log"; then
  echo "error: the service logged errors while fuzzed:" >&2
  grep '"level":"ERROR"' "$WORK/service.log" | head -20 >&2
  status=1
fi
exit $status
