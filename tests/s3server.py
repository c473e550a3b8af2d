"""A real S3 endpoint for tests: moto's server on loopback, in a thread of the test process."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

from core.settings import Settings


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """Run a moto server on 127.0.0.1 and yield its endpoint URL, e.g. ``http://127.0.0.1:PORT``.

    Port 0 lets the kernel pick a free port at bind time, so parallel runs cannot collide.
    Every bucket and object lives in this process's memory and vanishes with it.
    """
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def moto_settings(endpoint: str, bucket: str) -> Settings:
    """Settings for the S3 backend on the moto server at ``endpoint`` (it takes any key)."""
    return Settings(
        storage_backend="s3",
        s3_endpoint_url=endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",  # pydantic coerces it to a SecretStr
        s3_bucket=bucket,
    )


def closed_port() -> int:
    """A loopback port nothing listens on (bound by us a moment ago, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
