"""Where an address is, from MaxMind GeoIP2 databases: country, subdivision, anonymizer flags.

Deny-friendly by construction: anything that cannot be located (no database configured, an
address the database does not hold, a private or otherwise non-public address) comes back with
``country=None``, which the territory check treats as unknown, and unknown is refused wherever a
territory list applies. Only the physical ``country`` of a record is used, never its
``registered_country`` (where the ISP registered the block) nor ``represented_country``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import geoip2.database
import geoip2.errors
import geoip2.models
import maxminddb

from core.errors import InvalidInput

IPAddress = IPv4Address | IPv6Address

_SECONDS_PER_DAY = 86_400
_CACHE_SIZE = 100_000  # addresses; about 20 MB at the most


@dataclass(frozen=True, slots=True)
class GeoResult:
    """What the databases say about one address.

    ``country`` is ISO 3166-1 alpha-2 or None (unknown); ``subdivision`` the full ISO 3166-2
    code of the first-level subdivision (``"GB-ENG"``, ``"US-WA"``) when a City database knows
    it; ``anonymous`` is true when the Anonymous-IP database flags the address in any way.
    """

    country: str | None = None
    subdivision: str | None = None
    anonymous: bool = False


UNKNOWN = GeoResult()


def unmapped(ip: IPAddress) -> IPAddress:
    """``::ffff:1.2.3.4`` as ``1.2.3.4``; any other address unchanged.

    Dual-stack sockets report IPv4 clients in the mapped form; without this they would look
    private (``::ffff:0:0/96`` is special-purpose) and never match IPv4 proxy ranges.
    """
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


# A network as (first address, netmask) integers: ``int(ip) & mask == first`` is a membership
# test several times cheaper than ``ip in IPv4Network(...)``, and this runs on every request.
NetworkKey = tuple[int, int]


def network_keys(networks: Iterable[IPv4Network | IPv6Network]) -> tuple[NetworkKey, ...]:
    """``networks`` in the form ``in_any`` tests against."""
    return tuple((int(net.network_address), int(net.netmask)) for net in networks)


def in_any(value: int, keys: tuple[NetworkKey, ...]) -> bool:
    """Whether the address ``value`` (``int(ip)``) lies in one of ``keys`` (same IP version)."""
    return any(value & mask == first for first, mask in keys)


# IANA special-purpose blocks that have no location of their own (RFC 6890 and successors):
# this network, private, shared CGNAT, loopback, link-local, IETF protocol assignments,
# documentation, 6to4 relay anycast, benchmarking, multicast, reserved and broadcast.
_V4_NOT_LOCATABLE = network_keys(
    IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",  # multicast 224/4 and reserved 240/4, with 255.255.255.255
    )
)
# IPv6 unicast on the public Internet is 2000::/3; everything else (loopback, unspecified,
# mapped, ULA fc00::/7, link-local, multicast ff00::/8, reserved) is outside it.
_V6_GLOBAL_UNICAST = network_keys([IPv6Network("2000::/3")])
# Inside 2000::/3: IETF protocol assignments (Teredo among them) and documentation.
_V6_NOT_LOCATABLE = network_keys(
    IPv6Network(cidr) for cidr in ("2001::/23", "2001:db8::/32", "3fff::/20")
)


def is_locatable(ip: IPAddress) -> bool:
    """Whether looking ``ip`` up can mean anything: a public unicast address.

    Private, loopback, link-local, unspecified, shared (CGNAT), documentation, reserved and
    multicast addresses have no location of their own; a lookup could only match a stray
    record, so they are never looked up. Pass IPv4-mapped addresses through ``unmapped`` first.
    """
    value = int(ip)
    if isinstance(ip, IPv4Address):
        return not in_any(value, _V4_NOT_LOCATABLE)
    return in_any(value, _V6_GLOBAL_UNICAST) and not in_any(value, _V6_NOT_LOCATABLE)


_Locate = Callable[[IPAddress], geoip2.models.Country]
_Anonymize = Callable[[IPAddress], geoip2.models.AnonymousIP]


def _open(path: Path) -> geoip2.database.Reader:
    try:
        # MODE_AUTO: the C extension over a memory map when it is installed (it is here).
        return geoip2.database.Reader(path, mode=maxminddb.MODE_AUTO)
    except maxminddb.InvalidDatabaseError as exc:
        raise InvalidInput(f"{path} is not a MaxMind database: {exc}") from exc


def _location_method(reader: geoip2.database.Reader) -> _Locate:
    # Dispatch on what the file is, not on which setting named it, so a Country file in the
    # city slot (or the reverse) still works, and anything else is refused at startup rather
    # than raising TypeError on the first request.
    kind = reader.metadata().database_type
    if "City" in kind:
        return reader.city
    if "Enterprise" in kind:
        return reader.enterprise
    if "Country" in kind:
        return reader.country
    raise InvalidInput(f"the location database is {kind}; expected a Country or City one")


def _anonymous_method(reader: geoip2.database.Reader) -> _Anonymize:
    kind = reader.metadata().database_type
    if "GeoIP2-Anonymous-IP" in kind:
        return reader.anonymous_ip
    if "GeoIP-Anonymous-Plus" in kind:
        return reader.anonymous_plus
    raise InvalidInput(f"the anonymizer database is {kind}; expected an Anonymous-IP one")


def _is_flagged(record: geoip2.models.AnonymousIP) -> bool:
    # ``is_anonymous`` should imply the others; checking each survives a database that sets
    # only the specific flag.
    return (
        record.is_anonymous
        or record.is_anonymous_vpn
        or record.is_hosting_provider
        or record.is_public_proxy
        or record.is_residential_proxy
        or record.is_tor_exit_node
    )


class GeoDatabases:
    """The open GeoIP databases: one for location (City preferred), one for anonymizers.

    Both are optional. Without a location database every lookup has ``country=None``, so
    viewers are refused wherever a territory list applies (worldwide grants still play).
    Without an anonymizer database nobody is flagged anonymous. Lookups only read the memory
    map, so one instance serves every request and thread; ``close`` it at shutdown.
    """

    __slots__ = ("_anonymize", "_cache", "_locate", "_readers")

    def __init__(
        self,
        location: geoip2.database.Reader | None = None,
        anonymous: geoip2.database.Reader | None = None,
    ) -> None:
        """Wrap readers already open; ``InvalidInput`` if one is the wrong kind of database."""
        self._locate = _location_method(location) if location else None
        self._anonymize = _anonymous_method(anonymous) if anonymous else None
        self._readers = tuple(r for r in (location, anonymous) if r is not None)
        self._cache: dict[IPAddress, GeoResult] = {}

    @classmethod
    def open(
        cls, country: Path | None = None, city: Path | None = None, anonymous: Path | None = None
    ) -> GeoDatabases:
        """Open the configured files (``Settings.geoip_*_db``); any may be None.

        When both ``city`` and ``country`` are given only ``city`` is opened: it holds the
        same countries plus subdivisions, and one lookup per request is cheaper than two.
        Raises ``InvalidInput`` for a file that is not the right kind of MaxMind database and
        ``OSError`` for one that cannot be read.
        """
        location_path = city or country
        opened: list[geoip2.database.Reader] = []
        try:
            location = anonymizer = None
            if location_path:
                location = _open(location_path)
                opened.append(location)
            if anonymous:
                anonymizer = _open(anonymous)
                opened.append(anonymizer)
            return cls(location, anonymizer)
        except BaseException:
            # Do not leak the maps of the files that did open.
            for reader in opened:
                reader.close()
            raise

    def lookup(self, ip: IPAddress) -> GeoResult:
        """Where ``ip`` is, as far as the databases know; ``UNKNOWN`` when they cannot say.

        Answers are cached per address: a player asks for a playlist or a segment every few
        seconds from the same address, and the databases only change on restart."""
        ip = unmapped(ip)
        if not is_locatable(ip):
            return UNKNOWN
        found = self._cache.get(ip)
        if found is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()  # crude but bounded; a full reload costs one lookup each
            country, subdivision = self._location(ip)
            found = self._cache[ip] = GeoResult(country, subdivision, self._is_anonymous(ip))
        return found

    def _location(self, ip: IPAddress) -> tuple[str | None, str | None]:
        if self._locate is None:
            return None, None
        try:
            record = self._locate(ip)
        except geoip2.errors.AddressNotFoundError:
            return None, None
        country = record.country.iso_code
        # Country databases have no subdivisions; City (and Enterprise, a City) ones may.
        if country is None or not isinstance(record, geoip2.models.City):
            return country, None
        # The first (largest) subdivision: state, Land, UK nation – the level territory lists
        # name. ``Viewer`` has room for one; finer levels (a county) are dropped.
        code = record.subdivisions[0].iso_code if record.subdivisions else None
        return country, f"{country}-{code}" if code else None

    def _is_anonymous(self, ip: IPAddress) -> bool:
        if self._anonymize is None:
            return False
        try:
            return _is_flagged(self._anonymize(ip))
        except geoip2.errors.AddressNotFoundError:
            return False

    def age_days(self, now: datetime) -> float | None:
        """Days since the oldest open database was built; None when none is open.

        Compare with ``Settings.geoip_max_age_days`` and alert: stale data wrongly refuses
        viewers in allowed countries. ``now`` must be timezone-aware.
        """
        if now.tzinfo is None:
            raise InvalidInput("age_days needs a timezone-aware datetime")
        if not self._readers:
            return None
        oldest = min(reader.metadata().build_epoch for reader in self._readers)
        return (now.timestamp() - oldest) / _SECONDS_PER_DAY

    def close(self) -> None:
        """Close every open database (idempotent)."""
        for reader in self._readers:
            reader.close()
        self._readers = ()
        self._locate = None
        self._anonymize = None
        self._cache = {}

    def __enter__(self) -> GeoDatabases:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
