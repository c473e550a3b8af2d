"""Who is asking: the client address as our own proxies saw it, its location and platform.

Runs on every playlist, segment and key request, so everything that can be prepared once is
(proxy networks, regular expressions), and nothing here keeps state between calls.

Only the server's view counts. ``X-Forwarded-For`` and a CDN's country header are believed
only when the TCP peer is one of the configured trusted proxies, and ``X-Forwarded-For`` is
read from the right: every hop appends the address it saw, so the right-most entries were
written by our proxies and everything left of the first untrusted hop is the client's to
invent (the spoofing bypass in rights-anchors section (c)).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from core.errors import InvalidInput
from rights.geoip import (
    UNKNOWN,
    GeoDatabases,
    IPAddress,
    in_any,
    is_locatable,
    network_keys,
    unmapped,
)
from rights.model import Viewer

FORWARDED_FOR = "x-forwarded-for"

PLATFORMS = frozenset({"web", "ios", "android", "ctv"})
EMBED_PREFIX = "embed:"

# A DNS name in lower-case ASCII: labels of 1–63 letters, digits and inner hyphens.
_HOSTNAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*")
_MAX_HOSTNAME = 253

_MAPPED_V4 = IPv6Network("::ffff:0:0/96")

# Codes CDNs and old GeoIP data use for "not a country": unknown (XX, ZZ), Tor (T1),
# anonymous proxy / satellite / other (A1, A2, O1), continent-level (EU, AP).
_NOT_A_COUNTRY = frozenset({"XX", "ZZ", "T1", "A1", "A2", "O1", "EU", "AP"})
# Of those, the ones that say the client hides behind an anonymizer.
_ANONYMIZER_CODES = frozenset({"T1", "A1"})


class TrustedProxies:
    """The networks whose ``X-Forwarded-For`` and CDN headers we believe (``trusted_proxies``).

    Built once at startup. ``InvalidInput`` for anything that is not a network (host bits set
    count as a typo and are refused) and for ``/0``, which would trust every client's headers.
    """

    __slots__ = ("_v4", "_v6", "networks")

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks: tuple[IPv4Network | IPv6Network, ...] = tuple(
            _parse_network(text) for text in cidrs
        )
        # Split by version so a membership test only scans networks that can match.
        self._v4 = network_keys(n for n in self.networks if isinstance(n, IPv4Network))
        self._v6 = network_keys(n for n in self.networks if isinstance(n, IPv6Network))

    def __contains__(self, ip: IPAddress) -> bool:
        """Whether ``ip`` (already unmapped, as ``parse_address`` returns it) is a proxy."""
        return in_any(int(ip), self._v6 if isinstance(ip, IPv6Address) else self._v4)

    def __bool__(self) -> bool:
        return bool(self.networks)


def _parse_network(text: str) -> IPv4Network | IPv6Network:
    try:
        net = ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidInput(f"trusted proxy {text!r} is not an IP network: {exc}") from exc
    if net.prefixlen == 0:
        raise InvalidInput(f"trusted proxy {text!r} would trust every client's headers")
    if isinstance(net, IPv6Network) and net.subnet_of(_MAPPED_V4):
        # Addresses are compared unmapped, so a mapped range is stored as the IPv4 it means.
        low_32_bits = int(net.network_address) & 0xFFFF_FFFF
        return IPv4Network((low_32_bits, net.prefixlen - 96))
    return net


def parse_address(text: str) -> IPAddress | None:
    """An address as a peer or an ``X-Forwarded-For`` hop writes it; None if malformed.

    Accepts ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``, ``[2001:db8::1]`` and
    ``[2001:db8::1]:443``, with surrounding whitespace; IPv4-mapped IPv6 comes back as IPv4.
    Refuses zone ids (``fe80::1%eth0``), ``unknown``, obfuscated RFC 7239 names and junk.
    """
    text = text.strip()
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or ":" not in host or (rest and not _is_port_suffix(rest)):
            return None
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has at least two
        host, _, port = text.partition(":")
        if not _is_port(port):
            return None
    else:
        host = text
    if "%" in host:
        return None
    try:
        return unmapped(ip_address(host))
    except ValueError:
        return None


def _is_port_suffix(text: str) -> bool:
    return text.startswith(":") and _is_port(text[1:])


def _is_port(text: str) -> bool:
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit() and int(text) <= 65_535


def client_ip(peer: str, forwarded_for: str | None, proxies: TrustedProxies) -> IPAddress | None:
    """The client's address; None when it cannot be known (deny where lists apply).

    ``peer`` is the TCP peer; ``forwarded_for`` every ``X-Forwarded-For`` value joined by
    commas, in order. A peer that is not a trusted proxy *is* the client and its header is
    ignored. Otherwise the header is walked from the right past trusted proxies; the first
    untrusted hop is the client. A malformed hop ends the walk with None: what lies beyond it
    cannot be attributed. If every hop is trusted the left-most is returned.
    """
    return _walk(parse_address(peer), forwarded_for, proxies)


def _walk(
    peer: IPAddress | None, forwarded_for: str | None, proxies: TrustedProxies
) -> IPAddress | None:
    if peer is None or peer not in proxies:
        return peer
    hop: IPAddress = peer
    if not forwarded_for:
        # Nothing forwarded: the proxy itself is asking (a health check, say).
        return hop
    for entry in reversed(forwarded_for.split(",")):
        if not entry or entry.isspace():
            continue  # ``a,,b`` or a trailing comma: no hop was recorded there
        parsed = parse_address(entry)
        if parsed is None:
            return None
        hop = parsed
        if hop not in proxies:
            return hop
    return hop


def parse_platform(value: str) -> str:
    """``web``, ``ios``, ``android``, ``ctv`` or ``embed:<hostname>``; ``InvalidInput`` else.

    ASCII letters are folded to lower case (hostnames are case-insensitive); non-ASCII input
    is refused before folding, so no Unicode look-alike can fold into a licensed name.
    """
    if not value.isascii():
        raise InvalidInput("platform must be ASCII")
    value = value.lower()
    if value in PLATFORMS:
        return value
    if value.startswith(EMBED_PREFIX):
        host = value[len(EMBED_PREFIX) :]
        if len(host) <= _MAX_HOSTNAME and _HOSTNAME.fullmatch(host):
            return value
    raise InvalidInput(f"platform must be one of {', '.join(sorted(PLATFORMS))} or embed:<domain>")


def country_code(value: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code from a header or setting, upper-cased; None if it is not one.

    Pseudo-codes (``XX`` unknown, ``T1`` Tor, …) are not countries and give None.
    """
    if value is None:
        return None
    code = value.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha() or code in _NOT_A_COUNTRY:
        return None
    return code


def resolve_viewer(
    *,
    peer: str,
    headers: Mapping[str, str],
    platform: str,
    geo: GeoDatabases,
    proxies: TrustedProxies,
    cdn_country_header: str | None,
    dev_loopback_country: str | None,
) -> Viewer:
    """The viewer behind one request, as the server can establish it.

    ``headers`` has lower-case names, and a header sent several times must arrive as its
    values joined by ``", "`` in order (Starlette: ``", ".join(request.headers.getlist(n))``).
    Keeping one line only (the first, or the last as a dict built from ``items()`` does) can
    keep the client's own ``X-Forwarded-For`` line and drop the one our proxy wrote.

    Country: the CDN header (``cdn_country_header``) when the peer is a trusted proxy and the
    value is a real country code, with the GeoIP subdivision only if GeoIP agrees on the
    country; otherwise GeoIP. The CDN country stands even when a malformed hop leaves the IP
    unknown: the CDN located the connection it saw itself. The header is only as good as the
    proxy's guarantee that it overwrites what clients send. ``dev_loopback_country`` places
    loopback clients (local development; Settings refuses it in production). ``InvalidInput``
    for a bad platform.
    """
    platform = parse_platform(platform)
    peer_ip = parse_address(peer)
    ip = _walk(peer_ip, headers.get(FORWARDED_FOR), proxies)
    located = geo.lookup(ip) if ip is not None else UNKNOWN
    country, subdivision, anonymous = located.country, located.subdivision, located.anonymous

    if cdn_country_header and peer_ip is not None and peer_ip in proxies:
        raw = headers.get(cdn_country_header.lower())
        cdn_country = country_code(raw)
        if cdn_country is not None:
            if cdn_country != country:
                subdivision = None
            country = cdn_country
            if ip is not None and not is_locatable(ip):
                # The CDN located a client we only see as its private hop: keep its country
                # (evaluate() would read a private address as "location unknown").
                ip = None
        elif raw is not None and raw.strip().upper() in _ANONYMIZER_CODES:
            anonymous = True  # e.g. Cloudflare's T1: the CDN saw a Tor exit

    if dev_loopback_country and ip is not None and ip.is_loopback:
        # Placed as if it came from that country: the loopback address itself would read as
        # "location unknown" to evaluate(), so it is not passed on.
        country, subdivision, ip = _dev_country(dev_loopback_country), None, None

    return Viewer(
        country=country, subdivision=subdivision, ip=ip, anonymous=anonymous, platform=platform
    )


def _dev_country(value: str) -> str:
    code = country_code(value)
    if code is None:
        raise InvalidInput(f"dev_loopback_country {value!r} is not an ISO 3166-1 alpha-2 code")
    return code
