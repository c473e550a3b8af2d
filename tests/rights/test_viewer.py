"""Viewer resolution: client IP through trusted proxies, CDN country, platform; real GeoIP data."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidInput
from rights.geoip import GeoDatabases
from rights.model import Viewer
from rights.viewer import (
    TrustedProxies,
    client_ip,
    country_code,
    parse_address,
    parse_platform,
    resolve_viewer,
)
from tests.rights.test_geoip import ANONYMOUS_DB, CITY_DB

PROXY = "10.0.0.1"  # the load balancer the app sees as its TCP peer
EDGE = "10.0.0.2"  # a CDN / edge hop in front of it
PROXIES = TrustedProxies(["10.0.0.0/24", "2001:db8:ff::/48"])
SE = "89.160.20.112"  # SE, SE-E, not anonymous
GB = "81.2.69.142"  # GB, GB-ENG, flagged anonymous in the test Anonymous-IP database
US = "216.160.83.56"  # US, US-WA


@pytest.fixture(scope="module")
def geo() -> Iterator[GeoDatabases]:
    with GeoDatabases.open(city=CITY_DB, anonymous=ANONYMOUS_DB) as databases:
        yield databases


def resolve(
    geo: GeoDatabases,
    peer: str,
    headers: dict[str, str] | None = None,
    *,
    platform: str = "web",
    cdn_country_header: str | None = "cf-ipcountry",
    dev_loopback_country: str | None = None,
    proxies: TrustedProxies = PROXIES,
) -> Viewer:
    return resolve_viewer(
        peer=peer,
        headers=headers or {},
        platform=platform,
        geo=geo,
        proxies=proxies,
        cdn_country_header=cdn_country_header,
        dev_loopback_country=dev_loopback_country,
    )


# --- TrustedProxies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cidr", ["nope", "10.0.0.1/33", "10.0.0.1/8", "0.0.0.0/0", "::/0", "", "10.0.0.0/8,"]
)
def test_trusted_proxies_refuse_bad_or_trust_everyone_networks(cidr: str) -> None:
    with pytest.raises(InvalidInput):
        TrustedProxies([cidr])


def test_trusted_proxies_membership_by_version() -> None:
    proxies = TrustedProxies(
        ["10.0.0.0/8", " 192.0.2.7 ", "2001:db8::/32", "::ffff:172.16.0.0/108"]
    )
    assert IPv4Address("10.9.8.7") in proxies
    assert IPv4Address("192.0.2.7") in proxies
    assert IPv4Address("192.0.2.8") not in proxies
    assert IPv6Address("2001:db8::5") in proxies
    assert IPv4Address("172.16.3.4") in proxies  # the mapped range is stored as IPv4
    assert IPv4Network("172.16.0.0/12") in proxies.networks
    assert IPv6Address("::ffff:10.0.0.1") not in proxies  # callers unmap first (parse_address)
    assert not TrustedProxies([])


# --- parse_address ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("  1.2.3.4\t", "1.2.3.4"),
        ("1.2.3.4:5678", "1.2.3.4"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("[::ffff:1.2.3.4]:80", "1.2.3.4"),
    ],
)
def test_parse_address_accepts_what_proxies_write(text: str, expected: str) -> None:
    assert parse_address(text) == ip_address(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "unknown",
        "_hidden",
        "1.2.3",
        "1.2.3.4:",
        "1.2.3.4:99999x",
        "1.2.3.4:123456",
        "01.2.3.4",
        "[1.2.3.4]",
        "[2001:db8::1",
        "[2001:db8::1]443",
        "[2001:db8::1]:",
        "fe80::1%eth0",
        "1.2.3.4 5.6.7.8",
        "１.2.3.4",  # full-width digit
        "example.com",
    ],
)
def test_parse_address_refuses_junk(text: str) -> None:
    assert parse_address(text) is None


# --- client_ip -------------------------------------------------------------------------------


def test_xff_from_an_untrusted_peer_is_ignored() -> None:
    assert client_ip(SE, GB, PROXIES) == IPv4Address(SE)


def test_without_configured_proxies_the_peer_is_always_the_client() -> None:
    assert client_ip(PROXY, GB, TrustedProxies([])) == IPv4Address(PROXY)


def test_trusted_proxy_chain_gives_right_most_untrusted_hop() -> None:
    assert client_ip(PROXY, f"{SE}, {EDGE}", PROXIES) == IPv4Address(SE)


def test_client_supplied_left_most_entry_is_not_used() -> None:
    # The client wrote GB; the edge appended the address it really saw (SE).
    assert client_ip(PROXY, f"{GB}, {SE}, {EDGE}", PROXIES) == IPv4Address(SE)


def test_all_hops_trusted_gives_left_most() -> None:
    assert client_ip(PROXY, f"10.0.0.7, {EDGE}", PROXIES) == IPv4Address("10.0.0.7")


def test_trusted_peer_without_xff_is_itself_the_client() -> None:
    assert client_ip(PROXY, None, PROXIES) == IPv4Address(PROXY)
    assert client_ip(PROXY, "", PROXIES) == IPv4Address(PROXY)


@pytest.mark.parametrize(
    "forwarded",
    [f"{GB}, garbage", f"{GB}, unknown, {EDGE}", f"{GB}, 1.2.3.4:99999", f"{GB}, fe80::1%eth0"],
)
def test_malformed_hop_makes_the_client_unknown(forwarded: str) -> None:
    assert client_ip(PROXY, forwarded, PROXIES) is None


def test_malformed_entries_left_of_the_client_do_not_matter() -> None:
    assert client_ip(PROXY, f"garbage, {SE}", PROXIES) == IPv4Address(SE)


def test_empty_entries_and_whitespace_are_skipped() -> None:
    assert client_ip(PROXY, f" , {SE} ,, {EDGE} , ", PROXIES) == IPv4Address(SE)


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        (f"{SE}:5678", IPv4Address(SE)),
        ("2001:218::1", IPv6Address("2001:218::1")),
        ("[2001:218::1]:443, [2001:db8:ff::9]:80", IPv6Address("2001:218::1")),
        (f"::ffff:{SE}", IPv4Address(SE)),
    ],
)
def test_ports_ipv6_and_mapped_hops(forwarded: str, expected: IPv4Address | IPv6Address) -> None:
    assert client_ip(PROXY, forwarded, PROXIES) == expected


def test_ipv6_and_mapped_peers_are_matched_against_proxies() -> None:
    assert client_ip("2001:db8:ff::1", SE, PROXIES) == IPv4Address(SE)
    assert client_ip(f"::ffff:{PROXY}", SE, PROXIES) == IPv4Address(SE)
    assert client_ip(f"::ffff:{SE}", GB, PROXIES) == IPv4Address(SE)  # untrusted, unmapped


@pytest.mark.parametrize("peer", ["testclient", "", "unix:/run/app.sock"])
def test_unparseable_peer_is_unknown(peer: str) -> None:
    assert client_ip(peer, GB, PROXIES) is None


@given(spoofed=st.text(max_size=60))
def test_nothing_the_client_writes_into_xff_moves_it(spoofed: str) -> None:
    # Whatever the client sends, our edge appends what it saw and the answer is that address.
    assert client_ip(PROXY, f"{spoofed}, {SE}, {EDGE}", PROXIES) == IPv4Address(SE)


# --- resolve_viewer ---------------------------------------------------------------------------


def test_spoofed_xff_from_untrusted_peer_does_not_move_the_viewer(geo: GeoDatabases) -> None:
    viewer = resolve(geo, SE, {"x-forwarded-for": GB})
    assert viewer == Viewer("SE", "SE-E", IPv4Address(SE), anonymous=False, platform="web")


def test_viewer_behind_trusted_proxies(geo: GeoDatabases) -> None:
    viewer = resolve(geo, PROXY, {"x-forwarded-for": f"{SE}, {US}, {EDGE}"})
    assert viewer == Viewer("US", "US-WA", IPv4Address(US), anonymous=False, platform="web")


def test_anonymizer_flag_reaches_the_viewer(geo: GeoDatabases) -> None:
    viewer = resolve(geo, PROXY, {"x-forwarded-for": GB})
    assert (viewer.country, viewer.subdivision, viewer.anonymous) == ("GB", "GB-ENG", True)


def test_cdn_country_from_untrusted_peer_is_ignored(geo: GeoDatabases) -> None:
    assert resolve(geo, SE, {"cf-ipcountry": "GB"}).country == "SE"


def test_cdn_country_from_trusted_proxy_wins_and_drops_a_foreign_subdivision(
    geo: GeoDatabases,
) -> None:
    viewer = resolve(geo, PROXY, {"x-forwarded-for": SE, "cf-ipcountry": "GB"})
    assert (viewer.country, viewer.subdivision, viewer.ip) == ("GB", None, IPv4Address(SE))


def test_cdn_country_agreeing_with_geoip_keeps_the_subdivision(geo: GeoDatabases) -> None:
    viewer = resolve(
        geo,
        PROXY,
        {"x-forwarded-for": US, "cf-viewer-country": " us "},
        cdn_country_header="CF-Viewer-Country",
    )
    assert (viewer.country, viewer.subdivision) == ("US", "US-WA")


@pytest.mark.parametrize("value", ["XX", "ZZ", "EU", "", "G", "GBR", "1A", "G1", "GB, US", "Ǵb"])
def test_unusable_cdn_country_falls_back_to_geoip(geo: GeoDatabases, value: str) -> None:
    viewer = resolve(geo, PROXY, {"x-forwarded-for": SE, "cf-ipcountry": value})
    assert (viewer.country, viewer.subdivision, viewer.anonymous) == ("SE", "SE-E", False)


def test_cdn_tor_code_flags_anonymous_and_keeps_geoip_country(geo: GeoDatabases) -> None:
    viewer = resolve(geo, PROXY, {"x-forwarded-for": SE, "cf-ipcountry": "T1"})
    assert (viewer.country, viewer.anonymous) == ("SE", True)


def test_cdn_header_is_ignored_when_not_configured(geo: GeoDatabases) -> None:
    headers = {"x-forwarded-for": SE, "cf-ipcountry": "GB"}
    assert resolve(geo, PROXY, headers, cdn_country_header=None).country == "SE"


def test_cdn_country_stands_without_geoip_data() -> None:
    viewer = resolve(GeoDatabases(), PROXY, {"x-forwarded-for": SE, "cf-ipcountry": "FR"})
    assert (viewer.country, viewer.subdivision) == ("FR", None)


def test_malformed_xff_gives_unknown_location(geo: GeoDatabases) -> None:
    viewer = resolve(geo, PROXY, {"x-forwarded-for": f"{SE}, not-an-ip"})
    assert (viewer.ip, viewer.country, viewer.subdivision) == (None, None, None)


def test_cdn_country_survives_a_malformed_hop(geo: GeoDatabases) -> None:
    viewer = resolve(geo, PROXY, {"x-forwarded-for": f"{SE}, not-an-ip", "cf-ipcountry": "GB"})
    assert (viewer.ip, viewer.country, viewer.subdivision) == (None, "GB", None)


def test_ipv6_client_through_proxy(geo: GeoDatabases) -> None:
    viewer = resolve(geo, "2001:db8:ff::1", {"x-forwarded-for": "[2a02:d3c0::1]:51000"})
    assert (viewer.ip, viewer.country) == (IPv6Address("2a02:d3c0::1"), "GB")


def test_ipv4_mapped_peer_is_located_as_ipv4(geo: GeoDatabases) -> None:
    viewer = resolve(geo, f"::ffff:{SE}")
    assert (viewer.ip, viewer.country) == (IPv4Address(SE), "SE")


@pytest.mark.parametrize("peer", ["10.1.2.3", "192.168.0.10", "fd00::1", "169.254.1.1"])
def test_private_client_has_no_country(geo: GeoDatabases, peer: str) -> None:
    viewer = resolve(geo, peer)
    assert viewer.ip == ip_address(peer)
    assert viewer.country is None


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_dev_loopback_country_places_loopback_clients(geo: GeoDatabases, peer: str) -> None:
    assert resolve(geo, peer, dev_loopback_country="gb").country == "GB"
    assert resolve(geo, peer).country is None  # and only when configured


def test_dev_loopback_country_leaves_other_clients_alone(geo: GeoDatabases) -> None:
    assert resolve(geo, SE, dev_loopback_country="GB").country == "SE"
    # A client claiming loopback in XFF is still located by the address the edge saw.
    viewer = resolve(geo, PROXY, {"x-forwarded-for": f"127.0.0.1, {SE}"}, dev_loopback_country="GB")
    assert viewer.country == "SE"


def test_bad_dev_loopback_country_is_refused(geo: GeoDatabases) -> None:
    with pytest.raises(InvalidInput):
        resolve(geo, "127.0.0.1", dev_loopback_country="Britain")


# --- platform ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("web", "web"),
        ("IOS", "ios"),
        ("android", "android"),
        ("ctv", "ctv"),
        ("embed:example.com", "embed:example.com"),
        ("Embed:News.Example.co.uk", "embed:news.example.co.uk"),
        ("embed:a-b.example", "embed:a-b.example"),
        ("embed:" + ".".join(["a" * 63] * 3) + "." + "b" * 61, None),  # 253 chars: the limit
    ],
)
def test_valid_platforms(value: str, expected: str | None) -> None:
    assert parse_platform(value) == (expected or value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "tv",
        "web ",
        "embed:",
        "embed:-bad.com",
        "embed:bad-.com",
        "embed:a..b",
        "embed:example.com.",
        "embed:exa mple.com",
        "embed:example.com/path",
        "embed:*.example.com",
        "embed:example.com\n",
        "embed:exampl\u212a.com",  # Kelvin sign; lower-cases to ASCII k
        "embed:" + "a" * 64 + ".com",
        "embed:" + ".".join(["a" * 63] * 4),  # 255 chars
    ],
)
def test_invalid_platforms_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput):
        parse_platform(value)


def test_resolve_viewer_refuses_invalid_platform(geo: GeoDatabases) -> None:
    with pytest.raises(InvalidInput):
        resolve(geo, SE, platform="playstation")


def test_resolve_viewer_carries_the_normalised_platform(geo: GeoDatabases) -> None:
    assert resolve(geo, SE, platform="embed:Club.Example").platform == "embed:club.example"


@pytest.mark.parametrize(("value", "expected"), [("gb", "GB"), (" Se ", "SE"), ("XX", None)])
def test_country_code(value: str, expected: str | None) -> None:
    assert country_code(value) == expected
