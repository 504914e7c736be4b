#!/usr/bin/env bash
# Runs every test of the workspace, including the ones marked #[ignore] because they
# need real servers: MariaDB (127.0.0.1:3306), PostgreSQL (127.0.0.1:5432) and Redis
# (127.0.0.1:6379; tests use database 1 with a key prefix of their own).
# Fails loudly when a server cannot be reached. Extra arguments go to the test
# binaries (e.g. a name filter).
#
# Server URLs can be changed with FLASH_SALE_TEST_MYSQL_URL and
# FLASH_SALE_TEST_POSTGRES_URL (admin connections that may create and drop databases)
# and FLASH_SALE_TEST_REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

reachable() { # name host port
  if ! timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; then
    echo "error: $1 is not reachable at $2:$3 — start it, or point the tests elsewhere (see README)" >&2
    exit 1
  fi
}
[ -n "${FLASH_SALE_TEST_MYSQL_URL:-}" ] || reachable MariaDB 127.0.0.1 3306
[ -n "${FLASH_SALE_TEST_POSTGRES_URL:-}" ] || reachable PostgreSQL 127.0.0.1 5432
[ -n "${FLASH_SALE_TEST_REDIS_URL:-}" ] || reachable Redis 127.0.0.1 6379

cargo test --workspace --locked -- --include-ignored "$@"
