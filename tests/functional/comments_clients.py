"""Comment clients for the multi-process tests: WebSocket readers that resume like the
fan pages do, and REST posters that keep what was accepted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect


def events(ws: ClientConnection, timeout: float = 10) -> list[dict[str, Any]]:
    frame = json.loads(ws.recv(timeout=timeout))
    assert isinstance(frame, list)
    return frame


@dataclass
class Reader:
    """Reads a channel in a thread, reconnecting with ``?after=`` whenever the server (or
    the network) ends the connection, as the fan page does. ``ids`` is every message id
    seen, in order of arrival; ``closes`` the close codes it got."""

    url: Callable[[str | None], str]
    ids: list[str] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)
    received_at: dict[str, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Reader:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def join(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=20)

    def _run(self) -> None:
        while not self.stop.is_set():
            after = self.ids[-1] if self.ids else None
            try:
                with connect(self.url(after), open_timeout=5) as ws:
                    self._read(ws)
            except ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else None)
            except (OSError, InvalidHandshake, InvalidStatus, TimeoutError):
                self.closes.append(None)
            time.sleep(0.2)

    def _read(self, ws: ClientConnection) -> None:
        while not self.stop.is_set():
            try:
                frame = events(ws, timeout=0.5)
            except TimeoutError:
                continue
            now = time.monotonic()
            for event in frame:
                if event["type"] == "message" and event["id"] not in self.received_at:
                    self.ids.append(event["id"])
                    self.received_at[event["id"]] = now


@dataclass
class Poster:
    """Posts numbered messages through one API process; keeps the accepted ids."""

    base_url: str
    channel: str
    token: str
    accepted: list[str] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    refused: list[int] = field(default_factory=list)

    def post(self, client: httpx2.Client, text: str) -> str | None:
        started = time.monotonic()
        try:
            response = client.post(
                f"{self.base_url}/v1/comments/{self.channel}",
                json={"text": text},
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=10,
            )
        except httpx2.TransportError:
            self.refused.append(0)
            return None
        if response.status_code != 201:
            self.refused.append(response.status_code)
            return None
        message_id: str = response.json()["id"]
        self.accepted.append(message_id)
        self.sent_at[message_id] = started
        return message_id

    def run(self, count: int, interval_s: float, label: str) -> threading.Thread:
        def work() -> None:
            with httpx2.Client() as client:
                for i in range(count):
                    self.post(client, f"{label} {i}")
                    time.sleep(interval_s)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        return thread


def id_key(message_id: str) -> tuple[int, int]:
    ms, _, seq = message_id.partition("-")
    return int(ms), int(seq)


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
