"""core.safe_http against a real HTTP server on loopback: refusals, redirects, limits."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.errors import TooLarge
from core.safe_http import (
    FetchFailed,
    FetchLimits,
    UrlRefused,
    check_address,
    check_url,
    open_url,
    parse_networks,
)

LOOPBACK = parse_networks(["127.0.0.0/8"])
BODY = b"x" * 10_000


class Handler(BaseHTTPRequestHandler):
    """/ok, /big, /stall, /drip, /status/<n>, /redirect?to=<url>, /echo (request headers)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/ok":
            self._send(200, BODY)
        elif path == "/echo":
            self._send(200, str(self.headers).encode())
        elif path == "/stall":
            time.sleep(3)
            self._send(200, b"late")
        elif path == "/drip":
            self._drip()
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"status")
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query.removeprefix("to="))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/chunked":
            self._chunked()
        else:
            self._send(404, b"none")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        for _ in range(100):
            self.wfile.write(b"d")
            self.wfile.flush()
            time.sleep(0.05)

    def _chunked(self) -> None:
        # No Content-Length: the size limit must hold while reading.
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(BODY)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timeouts are the point of some tests) breaks the pipe


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def limits(**overrides: object) -> FetchLimits:
    values: dict[str, object] = {"timeout_s": 5.0, "max_bytes": 1_000_000}
    values.update(overrides)
    return FetchLimits(**values)  # type: ignore[arg-type]  # test helper over the dataclass


def fetch(url: str, fetch_limits: FetchLimits) -> bytes:
    with open_url(url, fetch_limits) as response:
        return response.read_all()


def test_allowed_networks_let_loopback_through(base_url: str) -> None:
    with open_url(f"{base_url}/ok", limits(allowed_networks=LOOPBACK)) as response:
        assert response.status == 200
        assert response.header("CONTENT-LENGTH") == str(len(BODY))
        assert response.read_all() == BODY


def test_by_default_loopback_is_refused_even_on_the_real_server(base_url: str) -> None:
    with pytest.raises(UrlRefused, match="not a public internet address"):
        fetch(f"{base_url}/ok", limits())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.1.2.3/",
        "http://172.16.0.9/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 wrapping 169.254.169.254
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://localhost/",
        "http://api.localhost/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/",  # 127.0.0.1 in hex, short form
        "http://0177.0.0.1/",  # octal
        "http://017700000001/",  # octal, one number
    ],
)
def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused):
        check_url(url)
    with pytest.raises(UrlRefused):
        fetch(url, limits())


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/clip.mp4", "only http"),
        ("file:///etc/passwd", "only http"),
        ("gopher://example.com/", "only http"),
        ("http://user:pw@example.com/clip.mp4", "user name or password"),
        ("http://example.com:8080/clip.mp4", "port 8080"),
        ("http://exa mple.com/", "spaces"),
        ("http:///clip.mp4", "no host"),
        ("http://-bad-.example/", "not a valid host"),
        ("http://999.1.1.1/", "not a valid address"),
        ("http://[zz::1]/", "malformed"),
    ],
)
def test_malformed_urls_are_refused_before_any_network(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused, match=reason):
        check_url(url)


def test_a_public_url_passes_the_syntax_check() -> None:
    target = check_url("https://cdn.example.com/clips/goal.mp4?sig=1")
    assert (target.host, target.port, target.path) == (
        "cdn.example.com",
        443,
        "/clips/goal.mp4?sig=1",
    )
    check_address(ipaddress.ip_address("93.184.216.34"), ())


def test_allowed_networks_exempt_only_their_addresses() -> None:
    check_address(ipaddress.ip_address("127.0.0.5"), LOOPBACK)
    check_address(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK)
    with pytest.raises(UrlRefused):
        check_address(ipaddress.ip_address("10.0.0.1"), LOOPBACK)


def test_a_redirect_to_a_refused_address_is_refused(base_url: str) -> None:
    # The first hop is allowed (loopback is exempt here), the metadata address never is.
    url = f"{base_url}/redirect?to=http://169.254.169.254/latest/meta-data/"
    with pytest.raises(UrlRefused, match=r"169\.254\.169\.254"):
        fetch(url, limits(allowed_networks=LOOPBACK))


def test_redirects_are_followed_and_each_hop_rechecked(base_url: str) -> None:
    url = f"{base_url}/redirect?to=/ok"
    with open_url(url, limits(allowed_networks=LOOPBACK)) as response:
        assert response.url == f"{base_url}/ok"
        assert response.read_all() == BODY


def test_too_many_redirects_fail(base_url: str) -> None:
    loop = f"{base_url}/redirect?to={base_url}/redirect?to=/ok"
    with pytest.raises(FetchFailed, match="more than 1 redirects"):
        fetch(loop, limits(allowed_networks=LOOPBACK, max_redirects=1))


def test_a_declared_body_over_the_limit_is_too_large(base_url: str) -> None:
    with pytest.raises(TooLarge):
        fetch(f"{base_url}/ok", limits(allowed_networks=LOOPBACK, max_bytes=1000))


def test_an_undeclared_body_is_cut_at_the_limit(base_url: str) -> None:
    with pytest.raises(TooLarge):
        fetch(f"{base_url}/chunked", limits(allowed_networks=LOOPBACK, max_bytes=1000))


def test_a_stalled_server_times_out(base_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="in time") as caught:
        fetch(f"{base_url}/stall", limits(allowed_networks=LOOPBACK, timeout_s=0.5))
    assert caught.value.status_code is None
    assert time.monotonic() - started < 2


def test_the_deadline_covers_a_slow_drip(base_url: str) -> None:
    # Each byte comes quickly, but the whole body would take 5 s: the deadline ends it.
    started = time.monotonic()
    with pytest.raises(FetchFailed):
        fetch(f"{base_url}/drip", limits(allowed_networks=LOOPBACK, timeout_s=0.7))
    assert time.monotonic() - started < 2


def test_error_statuses_fail_with_the_status(base_url: str) -> None:
    with pytest.raises(FetchFailed, match="HTTP 404") as caught:
        fetch(f"{base_url}/status/404", limits(allowed_networks=LOOPBACK))
    assert caught.value.status_code == 404
    assert caught.value.code == "download_failed"


def test_304_is_returned_to_the_caller(base_url: str) -> None:
    with open_url(f"{base_url}/status/304", limits(allowed_networks=LOOPBACK)) as response:
        assert response.status == 304


def test_a_closed_port_fails_without_a_status() -> None:
    with pytest.raises(FetchFailed, match="refused") as caught:
        fetch("http://127.0.0.1:9/", limits(allowed_networks=LOOPBACK))
    assert caught.value.status_code is None


def test_the_host_header_and_our_headers_are_sent(base_url: str) -> None:
    url = f"{base_url}/echo"
    with open_url(url, limits(allowed_networks=LOOPBACK), headers={"If-None-Match": '"v1"'}) as r:
        echoed = r.read_all().decode()
    assert f"Host: {url.split('/')[2]}" in echoed
    assert 'If-None-Match: "v1"' in echoed


def test_proxy_variables_are_ignored(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://10.9.9.9:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    assert fetch(f"{base_url}/ok", limits(allowed_networks=LOOPBACK)) == BODY


def test_parse_networks_refuses_garbage() -> None:
    assert parse_networks(["10.0.0.0/8", "::1"])[1] == ipaddress.ip_network("::1/128")
    with pytest.raises(ValueError, match="not an IP network"):
        parse_networks(["ten.zero"])


# --- TLS: the certificate is checked against the host name, sent as SNI ----------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_checks_the_certificate_and_sends_the_host_name(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    server_names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    server = QuietServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://localhost:{server.server_address[1]}/ok"
        # A self-signed certificate is not trusted: verification is on.
        with pytest.raises(FetchFailed, match="certificate is not valid"):
            fetch(url, limits(allowed_networks=LOOPBACK))
    finally:
        server.shutdown()
        server.server_close()
    assert server_names == ["localhost"]  # connected to the pinned address, SNI by name
