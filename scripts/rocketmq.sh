#!/usr/bin/env bash
# Apache RocketMQ (rocketmq-rust) for flash-sale's async strategy: a name server on
# 127.0.0.1:9876 and one broker on 127.0.0.1:10911, loopback only.
#
#   scripts/rocketmq.sh install   build rocketmq-namesrv and rocketmq-broker from
#                                 crates.io (cargo install --locked; ~17 min on two
#                                 cores) unless they are installed already
#   scripts/rocketmq.sh start     install if needed, write the configs, start both and
#                                 return once a message has gone through the broker
#   scripts/rocketmq.sh stop      stop both (by PID)
#   scripts/rocketmq.sh status    say what runs
#
# Everything lives outside the repository, in $FLASH_SALE_ROCKETMQ_HOME (default
# ~/.cache/flash-sale/rocketmq): bin/ (the binaries), run/ (configs, PIDs, logs, store).
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT="${FLASH_SALE_ROCKETMQ_HOME:-$HOME/.cache/flash-sale/rocketmq}"
RUN="$ROOT/run"
VERSION=1.0.0
NAMESRV_BIN="$ROOT/bin/rocketmq-namesrv-rust"
BROKER_BIN="$ROOT/bin/rocketmq-broker-rust"
NAMESRV_PORT=9876
BROKER_PORT=10911

listening() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_port() { # name port seconds
  for _ in $(seq 1 $(($3 * 10))); do
    listening "$2" && return 0
    sleep 0.1
  done
  echo "error: $1 did not listen on 127.0.0.1:$2 within $3 s; see $RUN/$1.log" >&2
  tail -n 20 "$RUN/$1.log" >&2 || true
  return 1
}

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

install() {
  if [ -x "$NAMESRV_BIN" ] && [ -x "$BROKER_BIN" ]; then
    return 0
  fi
  echo "installing rocketmq-namesrv and rocketmq-broker $VERSION into $ROOT (takes a while)" >&2
  cargo install --locked --root "$ROOT" "rocketmq-namesrv@$VERSION" "rocketmq-broker@$VERSION"
  [ -x "$NAMESRV_BIN" ] && [ -x "$BROKER_BIN" ] || {
    echo "error: the install did not produce $NAMESRV_BIN and $BROKER_BIN" >&2
    ls "$ROOT/bin" >&2 || true
    exit 1
  }
}

write_configs() {
  mkdir -p "$RUN/store" "$RUN/namesrv"
  cat > "$RUN/namesrv.toml" <<EOF
rocketmqHome = "$RUN"
kvConfigPath = "$RUN/namesrv/kvConfig.json"
configStorePath = "$RUN/namesrv/namesrv.properties"
listenPort = $NAMESRV_PORT
bindAddress = "127.0.0.1"
allowInsecurePublicListener = false

[runtime]
workerThreads = 2
EOF
  cat > "$RUN/broker.toml" <<EOF
[broker]
namesrvAddr = "127.0.0.1:$NAMESRV_PORT"
brokerIp1 = "127.0.0.1"
brokerIp2 = "127.0.0.1"
listenPort = $BROKER_PORT
storePathRootDir = "$RUN/store"

[broker.brokerServerConfig]
bindAddress = "127.0.0.1"

[broker.brokerIdentity]
brokerName = "flash-sale-broker"
brokerClusterName = "flash-sale"
brokerId = 0

[store]
storeType = "LocalFile"
brokerRole = "ASYNC_MASTER"
storePathRootDir = "$RUN/store"
haListenAddress = "127.0.0.1"
haListenPort = 10912
mappedFileSizeCommitLog = 67108864
maxHashSlotNum = 50000
maxIndexNum = 200000
EOF
}

start() {
  install
  mkdir -p "$RUN"
  write_configs
  export ROCKETMQ_HOME="$RUN"
  export ROCKETMQ_SECURITY_PROFILE=development-insecure-loopback
  if ! alive namesrv; then
    listening $NAMESRV_PORT && { echo "error: 127.0.0.1:$NAMESRV_PORT is taken by another process" >&2; exit 1; }
    nohup "$NAMESRV_BIN" -c "$RUN/namesrv.toml" --bindAddress 127.0.0.1 --listenPort $NAMESRV_PORT \
      > "$RUN/namesrv.log" 2>&1 &
    echo $! > "$RUN/namesrv.pid"
  fi
  wait_port namesrv $NAMESRV_PORT 30
  if ! alive broker; then
    listening $BROKER_PORT && { echo "error: 127.0.0.1:$BROKER_PORT is taken by another process" >&2; exit 1; }
    nohup "$BROKER_BIN" -c "$RUN/broker.toml" -n "127.0.0.1:$NAMESRV_PORT" \
      > "$RUN/broker.log" 2>&1 &
    echo $! > "$RUN/broker.pid"
  fi
  wait_port broker $BROKER_PORT 30
  # A real round trip: send a message and receive it back.
  if ! cargo run --quiet --locked -p flash-sale-tests --bin flash-sale-mq-probe -- \
      --namesrv "127.0.0.1:$NAMESRV_PORT" --within 90s; then
    echo "error: RocketMQ is listening but did not carry a message; see $RUN/*.log" >&2
    exit 1
  fi
  echo "RocketMQ is up: name server 127.0.0.1:$NAMESRV_PORT, broker 127.0.0.1:$BROKER_PORT"
}

stop_one() {
  if alive "$1"; then
    local pid
    pid=$(cat "$RUN/$1.pid")
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$RUN/$1.pid"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop_one broker; stop_one namesrv ;;
  status)
    for p in namesrv broker; do
      if alive $p; then echo "$p: running (pid $(cat "$RUN/$p.pid"))"; else echo "$p: stopped"; fi
    done ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
