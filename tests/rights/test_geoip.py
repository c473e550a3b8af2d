"""GeoDatabases against MaxMind's own test databases (../shared/geoip)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv6Address, ip_address
from pathlib import Path

import geoip2.database
import geoip2.models
import maxminddb
import pytest

from core.errors import InvalidInput
from rights.geoip import UNKNOWN, GeoDatabases, GeoResult, IPAddress, is_locatable

GEOIP_DIR = Path(__file__).resolve().parents[3] / "shared" / "geoip"
COUNTRY_DB = GEOIP_DIR / "GeoIP2-Country-Test.mmdb"
CITY_DB = GEOIP_DIR / "GeoIP2-City-Test.mmdb"
ANONYMOUS_DB = GEOIP_DIR / "GeoIP2-Anonymous-IP-Test.mmdb"

NOT_LOCATABLE = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",
    "169.254.1.1",
    "0.0.0.0",  # noqa: S104 - an address under test, nothing binds to it
    "100.64.0.1",  # shared address space (CGNAT)
    "192.0.2.1",  # documentation
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "2001:db8::1",
    "2001::1",  # Teredo
    "3fff::1",  # documentation (2024)
    "abcd:1000::1",  # outside 2000::/3, though the Anonymous-IP test file lists it
    "::ffff:0:0",
]


@pytest.fixture(scope="module")
def city() -> Iterator[GeoDatabases]:
    with GeoDatabases.open(city=CITY_DB, anonymous=ANONYMOUS_DB) as geo:
        yield geo


@pytest.fixture(scope="module")
def country() -> Iterator[GeoDatabases]:
    with GeoDatabases.open(country=COUNTRY_DB) as geo:
        yield geo


def ip(text: str) -> IPAddress:
    return ip_address(text)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("81.2.69.142", "GB"),  # registered_country is US: the physical country wins
        ("89.160.20.112", "SE"),
        ("175.16.199.0", "CN"),
        ("216.160.83.56", "US"),
        ("202.196.224.0", "PH"),  # represented_country US (a base): still PH
        ("2001:218::1", "JP"),
        ("2a02:d3c0::1", "GB"),
    ],
)
def test_country_database_locates_countries_without_subdivisions(
    country: GeoDatabases, address: str, expected: str
) -> None:
    assert country.lookup(ip(address)) == GeoResult(expected, None, anonymous=False)


@pytest.mark.parametrize(
    ("address", "expected_country", "expected_subdivision"),
    [
        ("81.2.69.142", "GB", "GB-ENG"),
        ("89.160.20.112", "SE", "SE-E"),
        ("175.16.199.0", "CN", "CN-22"),
        ("216.160.83.56", "US", "US-WA"),
        ("214.0.1.1", "AU", "AU-VIC"),  # only the City test database has this network
        ("2a02:d3c0::1", "GB", None),  # a country without a subdivision
    ],
)
def test_city_database_adds_iso_3166_2_subdivisions(
    city: GeoDatabases, address: str, expected_country: str, expected_subdivision: str | None
) -> None:
    result = city.lookup(ip(address))
    assert (result.country, result.subdivision) == (expected_country, expected_subdivision)


def test_ipv4_mapped_address_is_looked_up_as_ipv4(city: GeoDatabases) -> None:
    result = city.lookup(IPv6Address("::ffff:89.160.20.112"))
    assert (result.country, result.subdivision) == ("SE", "SE-E")


@pytest.mark.parametrize("address", ["8.8.8.8", "2a02:d500::1", "214.1.1.1"])
def test_unlocated_addresses_have_no_country(
    city: GeoDatabases, country: GeoDatabases, address: str
) -> None:
    # 8.8.8.8 is absent; the other two are present with no country (anycast, unassigned).
    assert city.lookup(ip(address)).country is None
    assert country.lookup(ip(address)).country is None


class CountingReader(geoip2.database.Reader):
    """A real reader that counts location lookups."""

    calls = 0

    def city(self, ip_address: str | IPAddress) -> geoip2.models.City:
        self.calls += 1
        return super().city(ip_address)


@pytest.mark.parametrize(
    "address", ["1.0.0.1", "81.2.69.142", "223.255.255.1", "2001:218::1", "2a02:d3c0::1"]
)
def test_public_unicast_addresses_are_locatable(address: str) -> None:
    assert is_locatable(ip(address))


@pytest.mark.parametrize("address", NOT_LOCATABLE)
def test_non_public_addresses_are_never_looked_up(address: str) -> None:
    reader = CountingReader(CITY_DB)
    with GeoDatabases(reader) as geo:
        assert not is_locatable(ip(address))
        assert geo.lookup(ip(address)) is UNKNOWN
        assert reader.calls == 0
        geo.lookup(ip("89.160.20.112"))
        assert reader.calls == 1  # the counter does count real lookups


@pytest.mark.parametrize(
    "address",
    [
        "1.2.0.1",  # anonymous VPN
        "1.124.213.1",  # VPN and Tor exit
        "71.160.223.5",  # hosting provider
        "186.30.236.1",  # public proxy
        "65.0.0.1",  # Tor exit
        "6.1.0.2",  # hosting provider
        "6.1.0.3",  # public proxy
        "6.1.0.4",  # residential proxy
        "81.2.69.142",  # every flag
        "2001:480:3a::1",  # IPv6 public proxy
    ],
)
def test_anonymizer_ranges_are_flagged(city: GeoDatabases, address: str) -> None:
    assert city.lookup(ip(address)).anonymous is True


@pytest.mark.parametrize("address", ["89.160.20.112", "216.160.83.56", "8.8.8.8"])
def test_ordinary_addresses_are_not_flagged(city: GeoDatabases, address: str) -> None:
    assert city.lookup(ip(address)).anonymous is False


def test_anonymous_flag_without_a_location_database() -> None:
    with GeoDatabases.open(anonymous=ANONYMOUS_DB) as geo:
        assert geo.lookup(ip("1.2.0.1")) == GeoResult(None, None, anonymous=True)


def test_no_database_configured_locates_nobody() -> None:
    geo = GeoDatabases.open()
    assert geo.lookup(ip("81.2.69.142")) == UNKNOWN
    assert geo.age_days(datetime.now(UTC)) is None


def test_city_is_preferred_when_both_are_configured() -> None:
    with GeoDatabases.open(country=COUNTRY_DB, city=CITY_DB) as geo:
        assert geo.lookup(ip("81.2.69.142")).subdivision == "GB-ENG"
        assert geo.lookup(ip("214.0.1.1")).country == "AU"  # absent from the Country file


def test_age_days_from_build_epoch() -> None:
    with maxminddb.open_database(CITY_DB) as raw:
        built = datetime.fromtimestamp(raw.metadata().build_epoch, UTC)
    with GeoDatabases.open(city=CITY_DB, anonymous=ANONYMOUS_DB) as geo:
        assert geo.age_days(built + timedelta(days=10, hours=12)) == pytest.approx(10.5)
        assert geo.age_days(built) == pytest.approx(0.0)
        with pytest.raises(InvalidInput):
            geo.age_days(datetime(2030, 1, 1))  # naive on purpose


@pytest.mark.parametrize(
    ("slot", "path"),
    [
        ("anonymous", COUNTRY_DB),  # a Country file where the anonymizer one belongs
        ("city", ANONYMOUS_DB),
        ("country", GEOIP_DIR / "GeoIP2-City-Test.source.json"),  # not a database at all
    ],
)
def test_wrong_kind_of_file_is_refused_at_open(slot: str, path: Path) -> None:
    with pytest.raises(InvalidInput):
        GeoDatabases.open(**{slot: path})


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        GeoDatabases.open(city=CITY_DB, anonymous=tmp_path / "absent.mmdb")


def test_close_is_idempotent_and_leaves_nobody_located() -> None:
    geo = GeoDatabases.open(city=CITY_DB)
    assert geo.lookup(ip("89.160.20.112")).country == "SE"
    geo.close()
    geo.close()
    assert geo.lookup(ip("89.160.20.112")) == UNKNOWN
