#!/usr/bin/env bash
# Runs every test of the workspace, including the ones marked #[ignore] because they
# need real servers: MariaDB (127.0.0.1:3306), PostgreSQL (127.0.0.1:5432), Redis
# (127.0.0.1:6379; tests use database 1 with a key prefix of their own) and RocketMQ
# (name server 127.0.0.1:9876, broker 127.0.0.1:10911; each test uses a topic and
# groups of its own). RocketMQ is installed (first time: ~17 min of compiling) and
# started by scripts/rocketmq.sh when it is not running, and stopped afterwards.
# The console's browser tests drive Debian's chromium through chromedriver; both are
# installed here (apt-get, packages chromium and chromium-driver) when missing.
# Fails loudly when a server cannot be reached. Extra arguments go to the test
# binaries (e.g. a name filter).
#
# Server URLs can be changed with FLASH_SALE_TEST_MYSQL_URL and
# FLASH_SALE_TEST_POSTGRES_URL (admin connections that may create and drop databases),
# FLASH_SALE_TEST_REDIS_URL and FLASH_SALE_TEST_ROCKETMQ_NAMESRV (a RocketMQ name
# server already running: then none is started here).
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

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing Debian's chromium and chromium-driver for the console's browser tests"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -q chromium chromium-driver >/dev/null ||
    { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium chromium-driver >/dev/null; } ||
    { echo "error: could not install chromium and chromium-driver" >&2; exit 1; }
fi

if [ -z "${FLASH_SALE_TEST_ROCKETMQ_NAMESRV:-}" ] && ! scripts/rocketmq.sh status | grep -q 'broker: running'; then
  scripts/rocketmq.sh start
  trap 'scripts/rocketmq.sh stop' EXIT
fi

# The crash and shutdown tests spawn the real binary: build it first (debug).
cargo build --locked -p flash-sale
cargo test --workspace --locked -- --include-ignored "$@"
# Schema-driven fuzzing of every operation with both roles (schemathesis; see the
# script). Skipped when only some tests were asked for.
if [ $# -eq 0 ]; then
  scripts/fuzz.sh
fi
