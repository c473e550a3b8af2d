"""A client that stops reading is closed with 4008 ("resume with ?after=") once its bounded
queue is full; the process's memory stays bounded and the other clients keep up."""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from core.models import Role
from tests.functional.comments_clients import Poster, Reader, id_key, wait_until
from tests.functional.comments_stack import (
    COMMENTS_E2E_REDIS_URL,
    CommentStack,
    clear_comment_keys,
    comment_servers,
)

pytestmark = pytest.mark.e2e

MESSAGES = 600
TEXT = "€" * 5000  # 15 KB of UTF-8 per message: 9 MB for the laggard in all


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CommentStack]:
    clear_comment_keys(COMMENTS_E2E_REDIS_URL)
    with comment_servers(
        tmp_path_factory.mktemp("comments-lag"),
        redis_url=COMMENTS_E2E_REDIS_URL,
        overrides={
            "COURTSIDE_COMMENTS_FLUSH_MS": "20",
            "COURTSIDE_COMMENTS_QUEUE_FRAMES": "8",
            "COURTSIDE_COMMENTS_MAX_CHARS": "5000",
            "COURTSIDE_COMMENTS_HISTORY_MAX": "100",
        },
    ) as running:
        yield running
    clear_comment_keys(COMMENTS_E2E_REDIS_URL)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_client_that_stops_reading_is_closed_with_4008_and_memory_stays_bounded(
    stack: CommentStack,
) -> None:
    with RawSocket(stack.ws_url(0)) as laggard:  # reads nothing while the messages flow
        reader = Reader(lambda after: stack.ws_url(0, f"after={after}" if after else "")).start()
        time.sleep(1.0)
        before = rss_kib(stack.pids[0])
        _mod, token = stack.user("flood", Role.MODERATOR)  # exempt from the rate limit
        posters = [Poster(stack.base_urls[1], stack.channel, token) for _ in range(4)]
        started = time.monotonic()
        for thread in [_flood(poster, MESSAGES // 4) for poster in posters]:
            thread.join(timeout=120)
        flood_s = time.monotonic() - started
        accepted = sorted((m for p in posters for m in p.accepted), key=id_key)
        assert len(accepted) == MESSAGES
        wait_until(lambda: reader.ids[-1:] == accepted[-1:], 30, "the reading client to keep up")
        grown_kib = rss_kib(stack.pids[0]) - before
        messages, code = laggard.drain()
    reader.join()
    assert code == 4008, f"closed with {code} after {messages} messages, a {flood_s:.1f} s flood"
    assert messages < MESSAGES
    assert reader.ids[-len(accepted) :] == accepted  # the reading client missed nothing
    # 9 MB went to the laggard; all but its queue and the kernel's buffers were dropped.
    assert grown_kib < 12 * 1024, f"the API process grew by {grown_kib} KiB"


def _flood(poster: Poster, count: int) -> threading.Thread:
    def work() -> None:
        with httpx2.Client() as client:
            for _ in range(count):
                poster.post(client, TEXT)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


class RawSocket:
    """A WebSocket client by hand: after the handshake it reads nothing until ``drain``,
    with the smallest receive buffer the kernel allows (no library reads ahead for it)."""

    def __init__(self, url: str) -> None:
        host_port, _, path = url.removeprefix("ws://").partition("/")
        host, _, port = host_port.partition(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(1)  # byte by byte: not a byte of frames read early
        assert self.buffer.startswith(b"HTTP/1.1 101"), self.buffer
        self.buffer = b""

    def __enter__(self) -> RawSocket:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def drain(self) -> tuple[int, int | None]:
        """Read to the end: (message events received, close code or None)."""
        self.sock.settimeout(15)
        messages = 0
        while True:
            opcode, payload = self._frame()
            if opcode is None:
                return messages, None
            if opcode == 8:
                return messages, struct.unpack("!H", payload[:2])[0] if payload else None
            messages += payload.count(b'"type":"message"')

    def _frame(self) -> tuple[int | None, bytes]:
        head = self._read(2)
        if len(head) < 2:
            return None, b""
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(8))[0]
        return head[0] & 0x0F, self._read(length)

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data
