# syntax=docker/dockerfile:1
# One image for every role: the API, the Celery workers, beat and the RTMP edge. The command
# picks the role (see docker-compose.yml); the default is the API.
#   docker build -t courtside:local .

# --- hls.js for the fan pages, exactly as package-lock.json pins it (no CDN at run time)
FROM node:20-bookworm-slim AS web-assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error \
    && test -s node_modules/hls.js/dist/hls.min.js

# --- the project and its dependencies, installed into a virtualenv that the runtime copies
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY ingest ./ingest
COPY transcode ./transcode
COPY rights ./rights
COPY player_api ./player_api
COPY web ./web
RUN --mount=type=cache,target=/root/.cache/pip pip install .
# Into the installed package, not the source tree: hatchling leaves out whatever .gitignore
# lists, and web/static/vendor/ is listed, so a copy made before `pip install .` never lands.
COPY --from=web-assets /build/node_modules/hls.js/dist/hls.min.js \
     /opt/venv/lib/python3.11/site-packages/web/static/vendor/hls.min.js
RUN python -c "from importlib.resources import files; \
assert (files('web') / 'static/vendor/hls.min.js').is_file(), 'hls.js missing'"

# --- runtime: Python, ffmpeg/ffprobe and the RTMP edge (nginx + nginx-rtmp) from Debian, the
# virtualenv, an unprivileged user
FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ffmpeg nginx libnginx-mod-rtmp \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 courtside \
    && useradd --system --uid 10001 --gid courtside --home-dir /var/lib/courtside \
        --create-home --shell /usr/sbin/nologin courtside
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    COURTSIDE_VAR_DIR=/var/lib/courtside
# var_dir holds beat's schedule file (and, with the local backend only, media); the user owns it.
WORKDIR /var/lib/courtside
USER courtside:courtside
EXPOSE 8000

# Liveness of the API process; slim images have no curl, Python's urllib does the request.
# Worker and beat containers turn this off in docker-compose.yml (they serve no HTTP).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["courtside", "serve", "--host", "0.0.0.0", "--port", "8000"]
