#!/usr/bin/env bash
# Installs whatever is missing to run or test Courtside: OS packages (when root), the venv,
# Python and npm dependencies, and the vendored hls.js. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
want_browser=${WANT_BROWSER:-0}

os_packages() {
  local missing=()
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v nginx >/dev/null || missing+=(nginx)
  command -v wrk >/dev/null || missing+=(wrk)  # load generator of `make bench B=playback`
  [ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing+=(libnginx-mod-rtmp)
  command -v node >/dev/null || missing+=(nodejs npm)
  if [ "$want_browser" = 1 ]; then command -v chromium >/dev/null || missing+=(chromium); fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: please install: ${missing[*]} (needs root)" >&2
    return 1
  fi
  echo "bootstrap: installing OS packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_env() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    echo "bootstrap: installing Python dependencies"
    # Some machines' pip config names local indexes that may be absent; hide those warnings.
    .venv/bin/pip install -q --upgrade pip 2> >(grep -v '^WARNING: Location' >&2)
    .venv/bin/pip install -q -e '.[dev]' 2> >(grep -v '^WARNING: Location' >&2)
    touch .venv/.installed
  fi
}

web_assets() {
  if [ ! -f node_modules/hls.js/dist/hls.min.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "bootstrap: installing npm dependencies"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  mkdir -p web/static/vendor
  cp node_modules/hls.js/dist/hls.min.js web/static/vendor/hls.min.js
}

os_packages
python_env
web_assets
