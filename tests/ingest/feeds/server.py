"""A real HTTP server on loopback for pull and feed tests: serves what a test puts in
``routes`` and remembers the headers of every request (``seen``). Feeds are served with an
ETag and answer 304 to a matching ``If-None-Match``. ``loopback`` runs any handler the same
way (the webhook tests' receiver)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).parent


def fixture(name: str, base_url: str, match: object = "") -> bytes:
    """A fixture feed with ``{BASE}`` (the media server) and ``{MATCH}`` (a match id) filled."""
    text = (FIXTURES / name).read_text()
    return text.replace("{BASE}", base_url).replace("{MATCH}", str(match)).encode()


@dataclass
class Route:
    body: bytes
    status: int = 200
    content_type: str = "application/octet-stream"

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass
class Origin:
    """The server's state, shared with its handler threads."""

    base_url: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def feed(self, path: str, name: str, content_type: str, match: object = "") -> str:
        """Serve fixture ``name`` at ``path``; its URL."""
        self.routes[path] = Route(fixture(name, self.base_url, match), content_type=content_type)
        return self.base_url + path

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [headers for seen_path, headers in self.seen if seen_path == path]


def _handler(origin: Origin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            origin.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = origin.routes.get(self.path)
            if route is None:
                self._answer(404, b"not here", "text/plain", None)
            elif self.headers.get("If-None-Match") == route.etag:
                self._answer(304, b"", route.content_type, route.etag)
            else:
                self._answer(route.status, route.body, route.content_type, route.etag)

        def _answer(self, status: int, body: bytes, content_type: str, etag: str | None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

    return Handler


@contextmanager
def serving() -> Iterator[Origin]:
    origin = Origin()
    with loopback(_handler(origin)) as base_url:
        origin.base_url = base_url
        yield origin


@contextmanager
def loopback(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port from a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
