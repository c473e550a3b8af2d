"""An HTTP client for URLs a partner gave us, which refuses server-side request forgery.

Stdlib only (``http.client``, ``ssl``, ``socket``, ``ipaddress``). What it guarantees:

- only ``http`` and ``https``; no ``user:password@`` in the URL;
- the host is resolved once (``getaddrinfo``) and refused if ANY of its addresses is loopback,
  private, link-local (the cloud metadata service 169.254.169.254, fd00:ec2::254), multicast,
  reserved, unspecified, shared (CGNAT 100.64.0.0/10) or otherwise not global, including the
  IPv4-mapped, 6to4, NAT64 and Teredo forms of those — unless the address is inside
  ``FetchLimits.allowed_networks``;
- the connection goes to the address that was checked, never to a second resolution (a DNS
  rebinding answer cannot swap in an internal address); the ``Host`` header and, for https,
  SNI and certificate verification still use the host name;
- ports: the scheme's default, 80 or 443; any other port only when every address of the host
  is inside ``allowed_networks`` (a partner's CDN has no reason to use odd ports, and odd ports
  are how internal services are probed);
- redirects are followed by hand (at most ``max_redirects``) and every hop is checked again;
- proxy environment variables are ignored (``http.client`` never reads them);
- one deadline covers the whole request, connect to last byte, and the body is capped.

Host name resolution itself cannot be given a timeout with the standard library; the system
resolver's own limits apply to that step.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin, urlsplit

from core.errors import CourtsideError, InvalidInput, TooLarge

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
STANDARD_PORTS = frozenset({80, 443})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that must not follow a redirect to another origin.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
USER_AGENT = "Courtside-Fetch/1"
# Forms the WHATWG URL parser (and glibc's inet_aton) read as an IPv4 address: 2130706433,
# 0x7f.1, 0177.0.0.1, 127.1 … Refused or allowed exactly like the dotted address they mean.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_SHARED_V4 = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class UrlRefused(InvalidInput):
    """A URL we will not fetch: bad scheme, credentials, port, or an address not on the
    public internet."""

    code = "url_refused"


class FetchFailed(CourtsideError, ConnectionError):
    """The fetch did not succeed: no connection, a timeout, a bad answer or a non-2xx status
    (``status_code`` holds it; None when the server never answered)."""

    code = "download_failed"

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class FetchLimits:
    """``timeout_s`` covers the whole request, connect to last byte; a body over ``max_bytes``
    raises ``TooLarge``; addresses inside ``allowed_networks`` are exempt from the refusal of
    non-public addresses (``settings.pull_allowed_networks``; empty by default)."""

    timeout_s: float
    max_bytes: int
    allowed_networks: tuple[IPNetwork, ...] = ()
    max_redirects: int = 5


def parse_networks(values: Sequence[str]) -> tuple[IPNetwork, ...]:
    """``["127.0.0.0/8", "::1"]`` → network objects; a bad entry is an ``InvalidInput``."""
    try:
        return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)
    except ValueError as exc:
        raise InvalidInput(f"not an IP network: {exc}") from None


# --- address policy ---------------------------------------------------------------------------


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form carries (mapped, 6to4, NAT64, Teredo)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_public(address: IPAddress) -> bool:
    if (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    ):
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address not in _SHARED_V4
    embedded = _embedded_v4(address)
    return embedded is None or _is_public(embedded)


def _is_allowed(address: IPAddress, allowed: tuple[IPNetwork, ...]) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(c.version == net.version and c in net for c in candidates for net in allowed)


def check_address(address: IPAddress, allowed: tuple[IPNetwork, ...]) -> None:
    """Refuse an address that is not on the public internet, unless it is explicitly allowed."""
    if _is_allowed(address, allowed) or _is_public(address):
        return
    raise UrlRefused(f"{address} is not a public internet address; we only fetch public URLs")


# --- URL syntax -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A checked URL: scheme, host name (IDNA, lower case), port, and the request path."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    literal: IPAddress | None


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells directly (dotted, IPv6, or a decimal/hex/octal IPv4 form);
    ``localhost`` names count as 127.0.0.1. None for an ordinary host name."""
    if host == "localhost" or host.endswith(".localhost"):
        return ipaddress.IPv4Address("127.0.0.1")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if all(_NUMERIC_LABEL.match(label) for label in host.split(".")):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise UrlRefused(f"'{host}' is not a valid address") from None
    return None


def _host_name(parts: SplitResult) -> str:
    host = parts.hostname
    if not host:
        raise UrlRefused("the URL has no host")
    if ":" in host:  # only an IPv6 literal has colons here
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UrlRefused(f"'{host}' is not a valid IPv6 address") from None
        return host
    try:
        ascii_host = host.encode("idna").decode("ascii").rstrip(".")
    except UnicodeError:
        raise UrlRefused(f"'{host}' is not a valid host name") from None
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise UrlRefused(f"'{host}' is not a valid host name")
    return ascii_host


def _port(parts: SplitResult) -> int:
    try:
        port = parts.port
    except ValueError:
        raise UrlRefused("the URL's port is not a number from 1 to 65535") from None
    return port if port is not None else DEFAULT_PORTS[parts.scheme]


def parse_target(url: str) -> Target:
    """Check a URL's syntax: scheme, no credentials, a valid host and port. No network use."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UrlRefused("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. a bracketed host that is no IPv6 address
        raise UrlRefused(f"the URL is malformed: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise UrlRefused("only http:// and https:// URLs can be fetched")
    if "@" in parts.netloc:
        raise UrlRefused("URLs with a user name or password are refused")
    host = _host_name(parts)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, host, _port(parts), path, literal_address(host))


def _check_port(target: Target, addresses: Sequence[IPAddress], limits: FetchLimits) -> None:
    if target.port in STANDARD_PORTS:
        return
    if addresses and all(_is_allowed(a, limits.allowed_networks) for a in addresses):
        return
    raise UrlRefused(f"port {target.port} is refused; use the standard port 80 or 443")


def check_url(url: str, allowed_networks: tuple[IPNetwork, ...] = ()) -> Target:
    """What can be checked when a URL is submitted, without resolving it: syntax, and the
    address when the host is written as one (``http://10.0.0.1/``, ``http://2130706433/``)."""
    target = parse_target(url)
    if target.literal is not None:
        check_address(target.literal, allowed_networks)
    elif target.port not in STANDARD_PORTS and not allowed_networks:
        raise UrlRefused(f"port {target.port} is refused; use the standard port 80 or 443")
    return target


def resolve(target: Target, limits: FetchLimits) -> IPAddress:
    """Every address of the host, checked; the one to connect to."""
    if target.literal is not None:
        addresses: list[IPAddress] = [target.literal]
    else:
        addresses = _getaddrinfo(target.host, target.port)
    for address in addresses:
        check_address(address, limits.allowed_networks)
    _check_port(target, addresses, limits)
    return addresses[0]


def _getaddrinfo(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchFailed(f"the host name '{host}' could not be resolved") from None
    # Scope ids (fe80::1%eth0) are dropped: such an address is link-local and refused anyway.
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise FetchFailed(f"the host name '{host}' has no address")
    return addresses


# --- connections ------------------------------------------------------------------------------


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to a checked address while speaking to the host name."""

    def __init__(self, host: str, port: int, address: IPAddress, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self.pinned_sock: socket.socket | None = None

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self._address), self.port), self.timeout)
        self.pinned_sock = self.sock


class _PinnedHTTPS(http.client.HTTPSConnection):
    """TLS to a checked address, with SNI and certificate checks against the host name."""

    def __init__(self, host: str, port: int, address: IPAddress, timeout: float) -> None:
        # The system's CAs, hostname checks on, no client certificate, no proxy.
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address
        self.pinned_sock: socket.socket | None = None

    def connect(self) -> None:
        raw = socket.create_connection((str(self._address), self.port), self.timeout)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
            self.pinned_sock = self.sock
        except BaseException:
            raw.close()
            raise


def _set_timeout(conn: http.client.HTTPConnection, seconds: float) -> None:
    sock = getattr(conn, "pinned_sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _connection(target: Target, address: IPAddress, timeout: float) -> http.client.HTTPConnection:
    kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    return kind(target.host, target.port, address, timeout)


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise FetchFailed("the server did not answer in time")
        return left


class FetchResponse:
    """An answer being read: ``status``, ``header(name)``, the final ``url`` (after
    redirects), and the body through ``iter_chunks``/``read_all`` under the size and time
    limits."""

    def __init__(
        self,
        raw: http.client.HTTPResponse,
        conn: http.client.HTTPConnection,
        url: str,
        limits: FetchLimits,
        deadline: _Deadline,
    ) -> None:
        self.status = raw.status
        self.headers = raw.headers
        self.url = url
        self._raw, self._conn, self._limits, self._deadline = raw, conn, limits, deadline

    def header(self, name: str) -> str | None:
        """A response header, looked up case-insensitively."""
        return self.headers.get(name)

    def declared_length(self) -> int | None:
        value = self.header("content-length")
        return int(value) if value and value.strip().isdigit() else None

    def iter_chunks(self, size: int = 1024 * 1024) -> Iterator[bytes]:
        """The body in pieces; ``TooLarge`` past ``max_bytes``, ``FetchFailed`` past the
        deadline or on a broken connection."""
        declared = self.declared_length()
        if declared is not None and declared > self._limits.max_bytes:
            raise TooLarge(self._too_large())
        total = 0
        while chunk := self._read(size):
            total += len(chunk)
            if total > self._limits.max_bytes:
                raise TooLarge(self._too_large())
            yield chunk

    def read_all(self) -> bytes:
        """The whole body (within ``max_bytes``)."""
        return b"".join(self.iter_chunks())

    def close(self) -> None:
        """Drop the connection (``open_url`` does this when its block ends)."""
        self._raw.close()
        self._conn.close()

    def _too_large(self) -> str:
        return f"the file at the URL is larger than the limit of {self._limits.max_bytes} bytes"

    def _read(self, size: int) -> bytes:
        # http.client drops conn.sock once the answer says "close", but the response still
        # reads from that socket: its timeout is set through the pinned reference.
        _set_timeout(self._conn, self._deadline.remaining())
        try:
            return self._raw.read1(size)
        except TimeoutError:
            raise FetchFailed("the server stopped sending before the download finished") from None
        except (OSError, http.client.HTTPException) as exc:
            raise FetchFailed(f"the download broke off: {exc}") from None


@dataclass
class _Request:
    method: str
    headers: dict[str, str]
    body: bytes | None


def _send(
    target: Target, request: _Request, limits: FetchLimits, deadline: _Deadline
) -> FetchResponse:
    address = resolve(target, limits)
    conn = _connection(target, address, deadline.remaining())
    try:
        conn.request(request.method, target.path, body=request.body, headers=request.headers)
        _set_timeout(conn, deadline.remaining())
        raw = conn.getresponse()
    except TimeoutError:
        conn.close()
        raise FetchFailed(f"{target.host} did not answer in time") from None
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise FetchFailed(f"could not fetch from {target.host}: {_describe(exc)}") from None
    return FetchResponse(raw, conn, target.url, limits, deadline)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not valid ({exc.verify_message})"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    return str(exc) or type(exc).__name__


def _next_request(status: int, location: str, request: _Request, target: Target) -> _Request:
    """The request for a redirect's next hop: 303 (and 301/302 after POST) become GET, and
    credentials never follow to another origin."""
    method, body = request.method, request.body
    if status == 303 or (status in (301, 302) and method == "POST"):
        method, body = ("HEAD" if method == "HEAD" else "GET"), None
    headers = dict(request.headers)
    new = urlsplit(location)
    new_port = new.port or DEFAULT_PORTS.get(new.scheme)
    if (new.scheme, new.hostname, new_port) != (target.scheme, target.host, target.port):
        headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
    if body is None:
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return _Request(method, headers, body)


def _location(response: FetchResponse, current: str) -> str | None:
    if response.status not in REDIRECT_STATUSES:
        return None
    location = response.header("location")
    return urljoin(current, location.strip()) if location else None


def _follow(url: str, request: _Request, limits: FetchLimits) -> FetchResponse:
    deadline = _Deadline(limits.timeout_s)
    for _hop in range(limits.max_redirects + 1):
        target = parse_target(url)
        response = _send(target, request, limits, deadline)
        location = _location(response, url)
        if location is None:
            return response
        response.close()
        request = _next_request(response.status, location, request, target)
        url = location
    raise FetchFailed(f"more than {limits.max_redirects} redirects")


def _check_status(response: FetchResponse) -> None:
    if 200 <= response.status < 300 or response.status == 304:
        return
    raise FetchFailed(f"the server answered HTTP {response.status}", status_code=response.status)


@contextmanager
def open_url(
    url: str,
    limits: FetchLimits,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Iterator[FetchResponse]:
    """Fetch ``url`` under the SSRF policy above. Yields the final answer (2xx or 304);
    any other status raises ``FetchFailed`` with ``status_code``; a refused URL or hop raises
    ``UrlRefused``. The connection is closed when the block ends."""
    sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    response = _follow(url, _Request(method.upper(), sent, body), limits)
    try:
        _check_status(response)
        yield response
    finally:
        response.close()
