"""Rights enforcement through the HTTP API, and the ways a fan might try to get around it.

The clip's league holds one APPROVED highlights grant for the United Kingdom only. Requests
come from chosen TCP peers (``client_from``) located by MaxMind's GeoIP2 test databases;
10.0.0.0/8 is the trusted proxy network and ``cf-ipcountry`` the CDN's country header.
Every attack must fail to get content: 403/404/422/451, never a 200 with playlist or
segment bytes.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy.orm import Session, sessionmaker

from core.models import Asset, League, RightsGrant
from core.settings import Settings
from rights import tokens
from rights.cache import RightsCache
from tests import published
from tests.conftest import bearer
from tests.rights.conftest import (
    MASTER,
    MEDIA,
    SEGMENT_PATH,
    ClientFrom,
    add_asset,
    build_app,
    insert_grant,
    publish_media,
    segment_bytes,
)

# Addresses in MaxMind's test databases (../shared/geoip/*.source.json).
GB = "81.2.69.142"  # GB-ENG; the Anonymous-IP test file also flags 81.2.69.0/24
GB_CLEAN = "2.125.160.217"  # GB-ENG, not flagged as an anonymizer
SE = "89.160.20.112"
CN = "175.16.199.0"
US = "216.160.83.56"
GB_V6 = "2a02:d3c0::1"  # 2a02:d3c0::/29 is GB
FR_V6 = "2a02:cfc0::1"  # 2a02:cfc0::/29 is FR
ANONYMOUS_NOWHERE = "1.2.0.1"  # anonymous VPN, no location record
NOT_IN_DB = "8.8.8.8"
DOCUMENTATION = "192.0.2.1"
PRIVATE = "192.168.1.10"
LOOPBACK = "127.0.0.1"
PROXY = "10.0.0.5"  # inside the trusted 10.0.0.0/8

CONTENT_STATUSES = {200, 206}


# --- helpers ---------------------------------------------------------------------------------


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def start(client: TestClient, asset: Asset, headers: dict[str, str] | None = None) -> str:
    """The master playlist path of a new playback (which must be allowed)."""
    response = client.post(f"/v1/playback/{asset.id}", headers=headers)
    assert response.status_code == 200, response.text
    return local(response.json()["master_url"])


def base_of(master: str) -> str:
    return master.rsplit("/", 1)[0]


def token_of(master: str) -> str:
    return master.split("/")[3]


def error(response: Response) -> dict[str, object]:
    body = response.json()
    assert isinstance(body, dict)
    err = body["error"]
    assert isinstance(err, dict)
    return err


def reason(response: Response) -> object:
    details = error(response)["details"]
    assert isinstance(details, dict)
    return details["reason"]


def assert_unavailable(response: Response, why: str) -> None:
    assert response.status_code == 451, response.text
    assert error(response)["code"] == "not_available"
    assert reason(response) == why


def assert_no_content(response: Response, asset: Asset) -> None:
    assert response.status_code not in CONTENT_STATUSES, response.text
    assert MASTER not in response.content
    assert MEDIA not in response.content
    assert segment_bytes(asset) not in response.content


def highlight_ids(client: TestClient, headers: dict[str, str] | None = None) -> list[str]:
    response = client.get("/v1/highlights", headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def keys_of(app: FastAPI) -> tokens.SigningKeys:
    keys = app.state.signing_keys
    assert isinstance(keys, tokens.SigningKeys)
    return keys


def raw_get(app: FastAPI, peer: str, raw_path: str) -> tuple[int, bytes]:
    return published.raw_get(app, raw_path, peer)


def claims_for(asset: Asset, grant: RightsGrant, country: str = "GB") -> dict[str, object]:
    """Claims shaped like the ones start_playback signs."""
    return {"a": asset.id, "p": f"hls/{asset.id}/1", "c": country, "g": grant.id, "s": "test"}


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def gb_grant(db: Session, rights_cache: RightsCache, rights_league: League) -> RightsGrant:
    """The league's only licence: highlights, approved, in the United Kingdom."""
    return insert_grant(db, rights_cache, "league", rights_league.id, territories=["GB"])


@pytest.fixture
def clip(db: Session, geo_app: FastAPI, rights_league: League, gb_grant: RightsGrant) -> Asset:
    assert gb_grant.scope_id == str(rights_league.id)  # the clip is licensed through it
    asset = add_asset(db, rights_league, title="GB-only clip")
    publish_media(geo_app, asset)
    return asset


@pytest.fixture
def gb(client_from: ClientFrom) -> TestClient:
    return client_from(GB)


@pytest.fixture
def se(client_from: ClientFrom) -> TestClient:
    return client_from(SE)


@pytest.fixture
def manager(client_from: ClientFrom, rights_manager_key: str) -> Callable[..., Response]:
    """PATCH a grant (or POST a blackout) through the rights manager API."""
    api = client_from(US)

    def call(method: str, path: str, body: object) -> Response:
        response = api.request(method, path, json=body, headers=bearer(rights_manager_key))
        assert response.status_code in (200, 201), response.text
        return response

    return call


# --- the baseline: GB plays, SE does not -----------------------------------------------------


def test_catalog_lists_the_clip_in_gb_only(gb: TestClient, se: TestClient, clip: Asset) -> None:
    assert clip.id in highlight_ids(gb)
    assert clip.id not in highlight_ids(se)


def test_playback_from_sweden_is_451_with_the_reason_in_words(se: TestClient, clip: Asset) -> None:
    response = se.post(f"/v1/playback/{clip.id}")
    assert_unavailable(response, "territory_not_licensed")
    message = error(response)["message"]
    assert message == "This highlight is not available in Sweden."
    assert "master_url" not in response.text


def test_playback_from_gb_plays_master_and_segment(gb: TestClient, clip: Asset) -> None:
    response = gb.post(f"/v1/playback/{clip.id}")
    assert response.status_code == 200, response.text
    master = local(response.json()["master_url"])
    assert gb.get(master).content == MASTER
    assert gb.get(f"{base_of(master)}/v0/index.m3u8").content == MEDIA
    segment = gb.get(f"{base_of(master)}/{SEGMENT_PATH}")
    assert segment.status_code == 200
    assert segment.content == segment_bytes(clip)


# --- 1–3: spoofed client addresses and country headers ---------------------------------------


def test_1_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    se: TestClient, clip: Asset
) -> None:
    response = se.post(f"/v1/playback/{clip.id}", headers={"X-Forwarded-For": GB})
    assert_unavailable(response, "territory_not_licensed")
    assert "Sweden" in str(error(response)["message"])
    assert clip.id not in highlight_ids(se, {"X-Forwarded-For": GB})


def test_1b_spoofed_hop_left_of_the_one_our_proxy_wrote_is_ignored(
    client_from: ClientFrom, clip: Asset
) -> None:
    proxy = client_from(PROXY)
    # The client sent "X-Forwarded-For: GB"; our proxy appended the address it saw (SE).
    one_line = proxy.post(f"/v1/playback/{clip.id}", headers={"X-Forwarded-For": f"{GB}, {SE}"})
    assert_unavailable(one_line, "territory_not_licensed")
    # The same with the client's line and the proxy's line as two header fields.
    two_lines = proxy.post(
        f"/v1/playback/{clip.id}", headers=[("X-Forwarded-For", GB), ("X-Forwarded-For", SE)]
    )
    assert_unavailable(two_lines, "territory_not_licensed")


def test_2_x_forwarded_for_through_a_trusted_proxy_is_honoured(
    client_from: ClientFrom, clip: Asset
) -> None:
    proxy = client_from(PROXY)
    forwarded = {"X-Forwarded-For": GB}
    master = start(proxy, clip, forwarded)
    assert proxy.get(master, headers=forwarded).content == MASTER
    segment = proxy.get(f"{base_of(master)}/{SEGMENT_PATH}", headers=forwarded)
    assert segment.content == segment_bytes(clip)
    # The same proxy forwarding a Swedish client is refused.
    swedish = proxy.post(f"/v1/playback/{clip.id}", headers={"X-Forwarded-For": SE})
    assert_unavailable(swedish, "territory_not_licensed")


def test_3_cdn_country_header_from_an_untrusted_peer_is_ignored(
    se: TestClient, clip: Asset
) -> None:
    response = se.post(f"/v1/playback/{clip.id}", headers={"cf-ipcountry": "GB"})
    assert_unavailable(response, "territory_not_licensed")
    assert clip.id not in highlight_ids(se, {"cf-ipcountry": "GB"})


def test_3_cdn_country_header_from_the_trusted_proxy_is_honoured(
    client_from: ClientFrom, clip: Asset
) -> None:
    proxy = client_from(PROXY)
    # 8.8.8.8 is in no test database: GeoIP alone cannot place it ...
    unknown = {"X-Forwarded-For": NOT_IN_DB}
    assert_unavailable(proxy.post(f"/v1/playback/{clip.id}", headers=unknown), "unknown_location")
    # ... the CDN's header, written by the proxy, does.
    located = {**unknown, "cf-ipcountry": "GB"}
    master = start(proxy, clip, located)
    assert proxy.get(master, headers=located).content == MASTER
    # And the header wins over GeoIP when the proxy sends it: a Swedish address, CDN says GB.
    assert start(proxy, clip, {"X-Forwarded-For": SE, "cf-ipcountry": "GB"})
    denied = proxy.post(
        f"/v1/playback/{clip.id}", headers={"X-Forwarded-For": GB, "cf-ipcountry": "SE"}
    )
    assert_unavailable(denied, "territory_not_licensed")


def test_3_cdn_header_cannot_carry_a_token_into_another_country(
    gb: TestClient, se: TestClient, clip: Asset
) -> None:
    master = start(gb, clip)
    response = se.get(master, headers={"cf-ipcountry": "GB", "X-Forwarded-For": GB})
    assert response.status_code == 403
    assert_no_content(response, clip)


# --- 4–7: tokens -----------------------------------------------------------------------------


def test_4_token_minted_in_gb_replayed_from_china_is_403(
    gb: TestClient, client_from: ClientFrom, clip: Asset
) -> None:
    master = start(gb, clip)
    segment = f"{base_of(master)}/{SEGMENT_PATH}"
    china = client_from(CN)
    for path in (master, segment):
        response = china.get(path)
        assert response.status_code == 403, response.text
        assert error(response)["code"] == "invalid_token"
        assert_no_content(response, clip)
    # The same URLs still play where the playback started.
    assert gb.get(segment).content == segment_bytes(clip)


def test_5_expired_token_is_403_within_the_leeway_it_still_plays(
    gb: TestClient, geo_app: FastAPI, geo_settings: Settings, clip: Asset, gb_grant: RightsGrant
) -> None:
    keys, leeway = keys_of(geo_app), geo_settings.token_leeway_s
    assert leeway > 10

    def master_with(ttl_s: int) -> Response:
        token = tokens.sign(keys, claims_for(clip, gb_grant), ttl_s=ttl_s)
        return gb.get(f"/v1/stream/{token}/master.m3u8")

    assert master_with(60).content == MASTER
    skewed = master_with(-(leeway - 10))  # expired 20 s ago: within the clock-skew leeway
    assert skewed.status_code == 200
    assert skewed.content == MASTER
    expired = master_with(-(leeway + 5))
    assert expired.status_code == 403
    assert "expired" in str(error(expired)["message"])
    assert_no_content(expired, clip)
    token = tokens.sign(keys, claims_for(clip, gb_grant), ttl_s=-(leeway + 5))
    segment = gb.get(f"/v1/stream/{token}/{SEGMENT_PATH}")
    assert segment.status_code == 403
    assert_no_content(segment, clip)


def _flip(char: str) -> str:
    return "A" if char != "A" else "B"


def test_6_tampered_token_is_403(gb: TestClient, clip: Asset) -> None:
    master = start(gb, clip)
    token = token_of(master)
    kid, body, signature = token.split(".")
    bad_signature = f"{kid}.{body}.{signature[:-2]}{_flip(signature[-2])}{signature[-1]}"
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["c"] = "SE"  # re-point the playback at Sweden, keeping the signature
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for forged in (bad_signature, f"{kid}.{forged_body}.{signature}", f"k2.{body}.{signature}"):
        response = gb.get(f"/v1/stream/{forged}/master.m3u8")
        assert response.status_code == 403, (forged, response.text)
        assert error(response)["code"] == "invalid_token"
        assert_no_content(response, clip)
    assert gb.get(master).status_code == 200  # the genuine token still works


def test_7_a_token_for_one_asset_never_returns_another_assets_bytes(
    db: Session, gb: TestClient, geo_app: FastAPI, rights_league: League, clip: Asset
) -> None:
    other = add_asset(db, rights_league, title="B")
    publish_media(geo_app, other)
    base = base_of(start(gb, clip))
    for path in (
        f"../../{other.id}/1/{SEGMENT_PATH}",
        f"%2e%2e/%2e%2e/{other.id}/1/{SEGMENT_PATH}",
        f"..%2f..%2f{other.id}%2f1%2f{SEGMENT_PATH}",
        f"v0/../../../{other.id}/1/master.m3u8",
        f"../../../hls/{other.id}/1/{SEGMENT_PATH}",
    ):
        status, body = raw_get(geo_app, GB, f"{base}/{path}")
        assert status in (404, 422), (path, status, body)
        assert segment_bytes(other) not in body
        assert MASTER not in body
    # The asset's own segment under the same token: its own bytes, nobody else's.
    assert raw_get(geo_app, GB, f"{base}/{SEGMENT_PATH}") == (200, segment_bytes(clip))


def test_7_claims_naming_another_asset_signed_with_a_wrong_key_are_403(
    db: Session, gb: TestClient, geo_app: FastAPI, rights_league: League, gb_grant: RightsGrant
) -> None:
    other = add_asset(db, rights_league, title="B")
    publish_media(geo_app, other)
    wrong = tokens.SigningKeys.single(b"not-the-server-secret-0123456789abcdef")
    assert wrong.current == keys_of(geo_app).current  # same kid "k1", different key
    forged = tokens.sign(wrong, claims_for(other, gb_grant), ttl_s=600)
    for path in ("master.m3u8", SEGMENT_PATH):
        response = gb.get(f"/v1/stream/{forged}/{path}")
        assert response.status_code == 403
        assert_no_content(response, other)
    # Control: the same claims under the server's key do play (B is GB-licensed too).
    genuine = tokens.sign(keys_of(geo_app), claims_for(other, gb_grant), ttl_s=600)
    assert gb.get(f"/v1/stream/{genuine}/{SEGMENT_PATH}").content == segment_bytes(other)


# --- 8: no token at all ----------------------------------------------------------------------


def test_8_guessed_media_paths_without_a_token_return_no_bytes(gb: TestClient, clip: Asset) -> None:
    prefix = f"hls/{clip.id}/1"
    for path in (
        f"/v1/stream/x/{SEGMENT_PATH}",
        f"/v1/stream/x/{prefix}/{SEGMENT_PATH}",
        f"/v1/stream/{SEGMENT_PATH}",
        "/v1/stream/master.m3u8",
        f"/static/{prefix}/{SEGMENT_PATH}",
        f"/static/{prefix}/master.m3u8",
        f"/media/{prefix}/{SEGMENT_PATH}",
        f"/{prefix}/{SEGMENT_PATH}",
        f"/{prefix}/master.m3u8",
        f"/static/../media/{prefix}/{SEGMENT_PATH}",
    ):
        response = gb.get(path)
        assert response.status_code in (403, 404, 422), (path, response.status_code)
        assert_no_content(response, clip)


# --- 9–10: rights changing under a running playback ------------------------------------------


def test_9_revoking_the_grant_stops_urls_handed_out_before(
    gb: TestClient, clip: Asset, gb_grant: RightsGrant, manager: Callable[..., Response]
) -> None:
    master = start(gb, clip)
    segment = f"{base_of(master)}/{SEGMENT_PATH}"
    assert gb.get(segment).content == segment_bytes(clip)
    revoked = manager("PATCH", f"/v1/rights/grants/{gb_grant.id}", {"status": "revoked"})
    assert revoked.json()["status"] == "revoked"
    for path in (master, segment):
        response = gb.get(path)
        assert response.status_code == 451, response.text
        assert_no_content(response, clip)
    assert clip.id not in highlight_ids(gb)
    assert_unavailable(gb.post(f"/v1/playback/{clip.id}"), "no_grant")


PROPAGATION_S = 1.0  # how long a rights change may take to reach another API process


def eventually_refused(client: TestClient, path: str) -> Response:
    """GET ``path`` until it stops serving content, for at most ``PROPAGATION_S``."""
    deadline = time.monotonic() + PROPAGATION_S
    while True:
        response = client.get(path)
        if response.status_code not in CONTENT_STATUSES or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


@pytest.fixture
def second_process(
    geo_settings: Settings, sessions: sessionmaker[Session]
) -> Iterator[Callable[[str], TestClient]]:
    """Another API process: its own app, its own in-process rights cache, the same Redis."""
    app = build_app(geo_settings, sessions)
    yield lambda ip: TestClient(app, client=(ip, 50000))
    app.state.rights.geo.close()


def test_9_a_revoke_reaches_every_api_process(
    clip: Asset,
    gb_grant: RightsGrant,
    manager: Callable[..., Response],
    second_process: Callable[[str], TestClient],
) -> None:
    elsewhere = second_process(GB)
    master = start(elsewhere, clip)  # warms the second process's rights cache
    assert elsewhere.get(master).content == MASTER
    manager("PATCH", f"/v1/rights/grants/{gb_grant.id}", {"status": "revoked"})
    # Other processes re-read the epoch every fraction of a second (rights.cache).
    assert_unavailable(eventually_refused(elsewhere, master), "no_grant")
    assert clip.id not in highlight_ids(elsewhere)


def test_9_a_revoke_whose_epoch_bump_fails_is_not_served_stale(
    monkeypatch: pytest.MonkeyPatch,
    geo_app: FastAPI,
    geo_settings: Settings,
    sessions: sessionmaker[Session],
    rights_cache: RightsCache,
    rights_manager_key: str,
    clip: Asset,
    gb_grant: RightsGrant,
) -> None:
    # Another process whose cached rights may be at most half a second old.
    other = build_app(geo_settings.model_copy(update={"rights_cache_max_age_s": 0.5}), sessions)
    elsewhere = TestClient(other, client=(GB, 50000))
    master = start(elsewhere, clip)
    assert elsewhere.get(master).status_code == 200

    def redis_down(*_args: object) -> int:
        raise redis.ConnectionError("Redis blipped")

    monkeypatch.setattr(rights_cache._client, "incr", redis_down)
    api = TestClient(geo_app, client=(US, 50000), raise_server_exceptions=False)
    api.patch(  # committed; today the bump then fails with a 500
        f"/v1/rights/grants/{gb_grant.id}",
        json={"status": "revoked"},
        headers=bearer(rights_manager_key),
    )
    response = eventually_refused(elsewhere, master)
    other.state.rights.geo.close()
    assert response.status_code == 451, "a revoked grant still plays in another process"


def test_10_narrowing_the_territory_stops_running_playback(
    gb: TestClient,
    client_from: ClientFrom,
    clip: Asset,
    gb_grant: RightsGrant,
    manager: Callable[..., Response],
) -> None:
    master = start(gb, clip)
    assert gb.get(master).status_code == 200
    manager("PATCH", f"/v1/rights/grants/{gb_grant.id}", {"territories": ["FR"]})
    response = gb.get(f"{base_of(master)}/{SEGMENT_PATH}")
    assert_unavailable(response, "territory_not_licensed")
    assert_no_content(response, clip)
    # France now plays (over IPv6: the test City database has no French IPv4 block).
    assert start(client_from(FR_V6), clip)


def test_10_a_blackout_does_not_affect_a_vod_highlight(
    gb: TestClient, clip: Asset, rights_league: League, manager: Callable[..., Response]
) -> None:
    """Blackouts are live-only (rights.evaluate): a highlight keeps playing under one."""
    master = start(gb, clip)
    blackout = {"scope_type": "league", "scope_id": str(rights_league.id), "countries": ["GB"]}
    assert manager("POST", "/v1/rights/blackouts", blackout).json()["active"] is True
    assert gb.get(f"{base_of(master)}/{SEGMENT_PATH}").content == segment_bytes(clip)
    assert clip.id in highlight_ids(gb)
    assert start(gb, clip)


# --- 11–12: where the viewer is --------------------------------------------------------------


@pytest.mark.parametrize("peer", [NOT_IN_DB, DOCUMENTATION, PRIVATE, LOOPBACK, "::1", "fe80::1"])
def test_11_an_address_that_cannot_be_located_is_refused(
    client_from: ClientFrom, clip: Asset, peer: str
) -> None:
    client = client_from(peer)
    response = client.post(f"/v1/playback/{clip.id}")
    assert_unavailable(response, "unknown_location")
    assert "can't determine your location" in str(error(response)["message"])
    assert clip.id not in highlight_ids(client)


def test_11_dev_loopback_country_places_loopback_clients(
    geo_settings: Settings,
    sessions: sessionmaker[Session],
    clip: Asset,
) -> None:
    app = build_app(geo_settings.model_copy(update={"dev_loopback_country": "GB"}), sessions)
    try:
        loopback = TestClient(app, client=(LOOPBACK, 50000))
        master = start(loopback, clip)
        assert loopback.get(master).content == MASTER
        # Only loopback: the same token from Sweden is refused.
        assert TestClient(app, client=(SE, 50000)).get(master).status_code == 403
    finally:
        app.state.rights.geo.close()


def test_11_dev_loopback_country_does_not_place_other_clients(
    geo_settings: Settings, sessions: sessionmaker[Session], clip: Asset
) -> None:
    app = build_app(geo_settings.model_copy(update={"dev_loopback_country": "GB"}), sessions)
    try:
        for peer in (SE, PRIVATE):
            response = TestClient(app, client=(peer, 50000)).post(f"/v1/playback/{clip.id}")
            assert response.status_code == 451, (peer, response.text)
    finally:
        app.state.rights.geo.close()


def test_12_ipv6_clients_are_located(client_from: ClientFrom, gb: TestClient, clip: Asset) -> None:
    gb6 = client_from(GB_V6)
    master = start(gb6, clip)
    assert gb6.get(f"{base_of(master)}/{SEGMENT_PATH}").content == segment_bytes(clip)
    assert gb.get(master).status_code == 200  # same country over IPv4: the same playback
    france = client_from(FR_V6)
    response = france.post(f"/v1/playback/{clip.id}")
    assert_unavailable(response, "territory_not_licensed")
    assert "France" in str(error(response)["message"])
    assert france.get(master).status_code == 403


def test_12_ipv4_mapped_ipv6_peers_are_located_as_ipv4(
    client_from: ClientFrom, clip: Asset
) -> None:
    mapped_gb = client_from(f"::ffff:{GB}")
    assert clip.id in highlight_ids(mapped_gb)
    assert mapped_gb.get(start(mapped_gb, clip)).content == MASTER
    mapped_se = client_from(f"::ffff:{SE}")
    assert_unavailable(mapped_se.post(f"/v1/playback/{clip.id}"), "territory_not_licensed")
    # A mapped address of the trusted proxy is the proxy: its forwarded address counts.
    mapped_proxy = client_from(f"::ffff:{PROXY}")
    assert start(mapped_proxy, clip, {"X-Forwarded-For": GB})


# --- 13: anonymizers -------------------------------------------------------------------------


def _set_vpn_policy(db: Session, cache: RightsCache, grant: RightsGrant, policy: str) -> None:
    grant.vpn_policy = policy
    db.commit()
    cache.invalidate()


def test_13_anonymizers_are_blocked_when_the_grant_says_so(
    db: Session,
    rights_cache: RightsCache,
    client_from: ClientFrom,
    gb: TestClient,
    clip: Asset,
    gb_grant: RightsGrant,
) -> None:
    clean = client_from(GB_CLEAN)
    master = start(clean, clip)
    _set_vpn_policy(db, rights_cache, gb_grant, "block_anonymous")

    response = gb.post(f"/v1/playback/{clip.id}")  # GB, flagged by the Anonymous-IP database
    assert_unavailable(response, "anonymizer_blocked")
    assert "VPN" in str(error(response)["message"])
    assert clip.id not in highlight_ids(gb)
    # A running playback moved behind the VPN (same country) is stopped too.
    assert_unavailable(gb.get(master), "anonymizer_blocked")
    # The CDN's Tor code from the trusted proxy flags the client as well.
    proxy = client_from(PROXY)
    tor = {"X-Forwarded-For": GB_CLEAN, "cf-ipcountry": "T1"}
    assert_unavailable(proxy.post(f"/v1/playback/{clip.id}", headers=tor), "anonymizer_blocked")
    # A clean address in the same country still plays.
    assert clean.get(master).content == MASTER

    _set_vpn_policy(db, rights_cache, gb_grant, "allow")
    assert start(gb, clip)


def test_13_anonymous_address_without_a_location_under_a_worldwide_grant(
    db: Session, rights_cache: RightsCache, client_from: ClientFrom, rights_league: League
) -> None:
    asset = add_asset(db, rights_league, title="worldwide")
    grant = insert_grant(
        db, rights_cache, "asset", asset.id, worldwide=True, vpn_policy="block_anonymous"
    )
    vpn = client_from(ANONYMOUS_NOWHERE)
    assert_unavailable(vpn.post(f"/v1/playback/{asset.id}"), "anonymizer_blocked")
    _set_vpn_policy(db, rights_cache, grant, "allow")
    assert vpn.post(f"/v1/playback/{asset.id}").status_code == 200


# --- 14: windows -----------------------------------------------------------------------------


def _window(
    start: datetime | None = None, end: datetime | None = None
) -> dict[str, dict[str, str] | None]:
    return {
        "start": {"at": start.isoformat()} if start else None,
        "end": {"at": end.isoformat()} if end else None,
    }


def _asset_with_window(
    db: Session, cache: RightsCache, app: FastAPI, league: League, **window: datetime
) -> Asset:
    asset = add_asset(db, league, title="windowed")
    publish_media(app, asset)
    insert_grant(db, cache, "asset", asset.id, territories=["GB"], window=_window(**window))
    return asset


@pytest.mark.usefixtures("gb_grant")
def test_14_a_window_that_has_not_started_says_when(
    db: Session,
    rights_cache: RightsCache,
    geo_app: FastAPI,
    gb: TestClient,
    rights_league: League,
) -> None:
    opens = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    asset = _asset_with_window(db, rights_cache, geo_app, rights_league, start=opens)
    response = gb.post(f"/v1/playback/{asset.id}")
    assert_unavailable(response, "window_not_started")
    details = error(response)["details"]
    assert isinstance(details, dict)
    assert datetime.fromisoformat(str(details["available_from"])) == opens
    assert opens.strftime("%Y-%m-%d %H:%M UTC") in str(error(response)["message"])
    assert asset.id not in highlight_ids(gb)


@pytest.mark.usefixtures("gb_grant")
def test_14_an_ended_window_is_refused(
    db: Session,
    rights_cache: RightsCache,
    geo_app: FastAPI,
    gb: TestClient,
    rights_league: League,
) -> None:
    ended = datetime.now(UTC) - timedelta(minutes=1)
    asset = _asset_with_window(db, rights_cache, geo_app, rights_league, end=ended)
    response = gb.post(f"/v1/playback/{asset.id}")
    assert_unavailable(response, "window_ended")
    assert error(response)["message"] == "This highlight is no longer available."


@pytest.mark.usefixtures("gb_grant")
def test_14_token_expiry_is_capped_at_the_window_end(
    db: Session,
    rights_cache: RightsCache,
    geo_app: FastAPI,
    gb: TestClient,
    rights_league: League,
) -> None:
    closes = datetime.now(UTC) + timedelta(minutes=10)
    asset = _asset_with_window(db, rights_cache, geo_app, rights_league, end=closes)
    response = gb.post(f"/v1/playback/{asset.id}")
    assert response.status_code == 200, response.text
    expires_at = datetime.fromisoformat(response.json()["expires_at"])
    assert datetime.now(UTC) < expires_at <= closes
    claims = tokens.verify(keys_of(geo_app), token_of(local(response.json()["master_url"])))
    assert claims["exp"] <= closes.timestamp()


def test_14_a_window_closed_during_playback_stops_it(
    gb: TestClient, clip: Asset, gb_grant: RightsGrant, manager: Callable[..., Response]
) -> None:
    master = start(gb, clip)
    ended = datetime.now(UTC) - timedelta(seconds=1)
    manager("PATCH", f"/v1/rights/grants/{gb_grant.id}", {"window": _window(end=ended)})
    assert_unavailable(gb.get(master), "window_ended")


# --- 15: platforms ---------------------------------------------------------------------------


def test_15_platform_outside_the_grant_is_refused(
    db: Session, rights_cache: RightsCache, gb: TestClient, clip: Asset, gb_grant: RightsGrant
) -> None:
    gb_grant.platforms = ["ios"]
    db.commit()
    rights_cache.invalidate()
    web = {"X-Courtside-Platform": "web"}
    response = gb.post(f"/v1/playback/{clip.id}", headers=web)
    assert_unavailable(response, "platform_not_licensed")
    assert error(response)["message"] == "This highlight is not available on the web."
    assert_unavailable(gb.post(f"/v1/playback/{clip.id}"), "platform_not_licensed")  # default
    assert clip.id not in highlight_ids(gb, web)
    ios = {"X-Courtside-Platform": "iOS"}
    assert clip.id in highlight_ids(gb, ios)
    master = start(gb, clip, ios)
    assert gb.get(master, headers=ios).content == MASTER
    # Platform is re-checked on every request, not taken from the token.
    assert_unavailable(gb.get(master, headers=web), "platform_not_licensed")
    assert_unavailable(gb.get(f"{master}?platform=web"), "platform_not_licensed")


@pytest.mark.parametrize("platform", ["playstation", "embed:", "embed:-bad-.com", "web "])
def test_15_invalid_platform_is_422(gb: TestClient, clip: Asset, platform: str) -> None:
    response = gb.post(f"/v1/playback/{clip.id}", headers={"X-Courtside-Platform": platform})
    assert response.status_code == 422, response.text
    assert "platform" in str(error(response)["message"])
    assert "master_url" not in response.text


# --- 16: deny by default ---------------------------------------------------------------------


def test_16_an_asset_without_any_grant_is_not_watchable(
    db: Session, geo_app: FastAPI, gb: TestClient, rights_league: League
) -> None:
    asset = add_asset(db, rights_league, title="unlicensed")
    publish_media(geo_app, asset)
    assert asset.id not in highlight_ids(gb)
    response = gb.post(f"/v1/playback/{asset.id}")
    assert_unavailable(response, "no_grant")
    assert error(response)["message"] == "This highlight isn't available to watch."


def test_16_pending_or_other_licence_grants_do_not_license(
    db: Session, rights_cache: RightsCache, gb: TestClient, rights_league: League
) -> None:
    asset = add_asset(db, rights_league, title="almost")
    insert_grant(db, rights_cache, "asset", asset.id, worldwide=True, status="pending")
    insert_grant(db, rights_cache, "asset", asset.id, worldwide=True, license_type="live")
    insert_grant(db, rights_cache, "asset", asset.id, worldwide=True, status="revoked")
    assert_unavailable(gb.post(f"/v1/playback/{asset.id}"), "no_grant")
    assert asset.id not in highlight_ids(gb)


def test_a_child_grant_narrows_its_parent(
    db: Session,
    rights_cache: RightsCache,
    client_from: ClientFrom,
    gb: TestClient,
    se: TestClient,
    other_league: League,
) -> None:
    """The worldwide league grant of ``other_league`` is intersected with an asset grant."""
    asset = add_asset(db, other_league, title="narrowed")
    insert_grant(db, rights_cache, "asset", asset.id, territories=["SE"])
    assert start(se, asset)
    assert_unavailable(gb.post(f"/v1/playback/{asset.id}"), "territory_not_licensed")
    assert_unavailable(client_from(US).post(f"/v1/playback/{asset.id}"), "territory_not_licensed")
