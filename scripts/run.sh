#!/usr/bin/env bash
# `make run`: the whole service on one machine with embedded defaults (SQLite, local media
# directory, a Redis of its own if none answers), demo content included. Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
export COURTSIDE_VAR_DIR="${COURTSIDE_VAR_DIR:-var}"
export COURTSIDE_LOG_JSON="${COURTSIDE_LOG_JSON:-false}"
host=${COURTSIDE_HOST:-127.0.0.1}
port=${COURTSIDE_PORT:-8000}
mkdir -p "$COURTSIDE_VAR_DIR/log"
log="$COURTSIDE_VAR_DIR/log"
pids=()

stop() {
  trap - INT TERM EXIT
  echo; echo "stopping…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

start_redis() {
  local url=${COURTSIDE_REDIS_URL:-redis://127.0.0.1:6379/0}
  if .venv/bin/python -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()" "$url" 2>/dev/null; then
    return
  fi
  echo "no Redis answers at $url: starting one on 127.0.0.1:6390 (logs in $log/redis.log)"
  redis-server --bind 127.0.0.1 --port 6390 --save "" --appendonly no >"$log/redis.log" 2>&1 &
  pids+=($!)
  export COURTSIDE_REDIS_URL=redis://127.0.0.1:6390/0
  for _ in $(seq 50); do redis-cli -p 6390 ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "Redis did not start; see $log/redis.log" >&2; exit 1
}

wait_for_api() {
  for _ in $(seq 100); do
    curl -fsS "http://$host:$port/healthz" >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "the API did not start; see $log/api.log" >&2; exit 1
}

.venv/bin/courtside migrate
start_redis
# nginx (the RTMP edge) calls the API's publish hooks at this address.
export COURTSIDE_RTMP_HOOK_BASE_URL="${COURTSIDE_RTMP_HOOK_BASE_URL:-http://$host:$port}"
.venv/bin/courtside worker --beat -Q ingest,transcode,default -c 2 >"$log/worker.log" 2>&1 &
pids+=($!)
# Live tasks run as long as their stream: a pool of their own, one process per stream.
.venv/bin/courtside worker -Q live -c "${COURTSIDE_LIVE_STREAMS:-2}" >"$log/live-worker.log" 2>&1 &
pids+=($!)
.venv/bin/courtside rtmp-edge >"$log/rtmp.log" 2>&1 &
pids+=($!)
.venv/bin/courtside serve --host "$host" --port "$port" >"$log/api.log" 2>&1 &
pids+=($!)
wait_for_api
.venv/bin/courtside seed-demo | tee "$log/demo.txt"
cat <<MSG

Courtside is running:
  fan page      http://$host:$port/
  API docs      http://$host:$port/docs
  RTMP ingest   ${COURTSIDE_RTMP_PUBLIC_URL:-rtmp://127.0.0.1:1935/live} (stream keys: POST /v1/live)
  readiness     http://$host:$port/readyz
  logs          $log/ (api.log, worker.log, live-worker.log, rtmp.log)
Demo clips appear on the fan page as the worker finishes them. Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
