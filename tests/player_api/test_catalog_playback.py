"""The fan catalog (GET /v1/highlights) and playback (POST /v1/playback, GET /v1/stream/…)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.models import Asset, AssetStatus, League
from core.settings import Settings
from rights import tokens
from tests.conftest import store_of
from tests.published import add_asset as _add_asset
from tests.published import raw_get as _raw_get

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MASTER = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nv0/index.m3u8\n"
MEDIA = b'#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2.0,\nseg_000.m4s\n#EXT-X-ENDLIST\n'
SEGMENT = b"0123456789abcdef"
SOURCE = b"SECRET-ORIGINAL-SOURCE-BYTES"


def keys_of(client: TestClient) -> tokens.SigningKeys:
    app = client.app
    assert isinstance(app, FastAPI)
    keys = app.state.signing_keys
    assert isinstance(keys, tokens.SigningKeys)
    return keys


def publish_media(client: TestClient, asset: Asset) -> None:
    """Fake HLS output for ``asset``, plus its original source beside it."""
    store = store_of(client)
    prefix = f"hls/{asset.id}/1"
    store.put_bytes(f"{prefix}/master.m3u8", MASTER)
    store.put_bytes(f"{prefix}/v0/index.m3u8", MEDIA)
    store.put_bytes(f"{prefix}/v0/init.mp4", b"init-bytes")
    store.put_bytes(f"{prefix}/v0/seg_000.m4s", SEGMENT)
    store.put_bytes(f"{prefix}/notes.txt", b"not media")
    store.put_bytes(f"sources/{asset.id}/original", SOURCE)


def add_asset(
    db: Session,
    league: League,
    *,
    title: str = "clip",
    status: AssetStatus = AssetStatus.READY,
    ready_at: datetime | None = BASE,
    asset_id: str | None = None,
) -> Asset:
    return _add_asset(db, league, title=title, status=status, ready_at=ready_at, asset_id=asset_id)


def raw_get(client: TestClient, raw_path: str) -> tuple[int, bytes]:
    return _raw_get(client.app, raw_path)


def local(url: str) -> str:
    """The path (and query) of an absolute URL, for the TestClient."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def start(client: TestClient, asset_id: str) -> str:
    response = client.post(f"/v1/playback/{asset_id}")
    assert response.status_code == 200, response.text
    master_url = response.json()["master_url"]
    assert isinstance(master_url, str)
    return local(master_url)


def stream_base(master_path: str) -> str:
    return master_path.rsplit("/", 1)[0]


@pytest.fixture
def ready(client: TestClient, db: Session, league: League) -> Asset:
    asset = add_asset(db, league, title="Buzzer beater")
    publish_media(client, asset)
    return asset


# --- catalog ---------------------------------------------------------------------------------


def test_catalog_lists_only_ready_assets_newest_first(
    client: TestClient, db: Session, league: League
) -> None:
    old = add_asset(db, league, title="old", ready_at=BASE)
    new = add_asset(db, league, title="new", ready_at=BASE + timedelta(hours=2))
    mid = add_asset(db, league, title="mid", ready_at=BASE + timedelta(hours=1))
    for status in (AssetStatus.QUEUED, AssetStatus.PROCESSING, AssetStatus.FAILED):
        add_asset(db, league, title=status.value, status=status, ready_at=None)
    add_asset(db, league, title="deleted", status=AssetStatus.DELETED, ready_at=None)

    response = client.get("/v1/highlights")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["id"] for item in body["items"]] == [new.id, mid.id, old.id]
    assert body["next_cursor"] is None
    first = body["items"][0]
    assert first["title"] == "new"
    assert first["league"] == {"slug": "premier", "name": league.name}
    assert datetime.fromisoformat(first["published_at"]) == BASE + timedelta(hours=2)
    assert local(first["playback_url"]) == f"/v1/playback/{new.id}"


def test_catalog_is_public(client: TestClient, db: Session, league: League) -> None:
    add_asset(db, league)
    response = client.get("/v1/highlights")
    assert response.status_code == 200
    assert len(response.json()["items"]) == 1


def test_catalog_filters_by_league(
    client: TestClient, db: Session, league: League, other_league: League
) -> None:
    mine = add_asset(db, league, title="mine")
    theirs = add_asset(db, other_league, title="theirs")
    response = client.get("/v1/highlights", params={"league": "other"})
    assert [item["id"] for item in response.json()["items"]] == [theirs.id]
    response = client.get("/v1/highlights", params={"league": "premier"})
    assert [item["id"] for item in response.json()["items"]] == [mine.id]
    response = client.get("/v1/highlights", params={"league": "nobody"})
    assert response.status_code == 200
    assert response.json()["items"] == []


def _walk_pages(client: TestClient, limit: int, **params: str) -> tuple[list[str], int]:
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        query: dict[str, str | int] = {"limit": limit, **params}
        if cursor is not None:
            query["cursor"] = cursor
        response = client.get("/v1/highlights", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        seen.extend(item["id"] for item in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages
        assert pages < 50, "pagination does not terminate"


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8])
def test_cursor_pagination_returns_every_item_exactly_once(
    client: TestClient, db: Session, league: League, other_league: League, limit: int
) -> None:
    # Several share a ready_at (ties are broken by id), one has microseconds.
    stamps = [BASE, BASE, BASE, BASE + timedelta(minutes=1), BASE + timedelta(minutes=1)]
    stamps += [BASE + timedelta(minutes=2, microseconds=123456), BASE - timedelta(days=1)]
    assets = [add_asset(db, league, title=f"a{i}", ready_at=s) for i, s in enumerate(stamps)]
    assets.append(add_asset(db, other_league, title="other", ready_at=BASE))
    expected = [a.id for a in sorted(assets, key=lambda a: (a.ready_at, a.id), reverse=True)]

    seen, pages = _walk_pages(client, limit)
    assert seen == expected
    assert len(set(seen)) == len(seen)
    assert pages == -(-len(expected) // limit)  # no trailing empty page

    league_only, _ = _walk_pages(client, limit, league="premier")
    assert league_only == [i for i in expected if i != assets[-1].id]


def test_exact_page_size_ends_without_an_empty_page(
    client: TestClient, db: Session, league: League
) -> None:
    for i in range(4):
        add_asset(db, league, ready_at=BASE + timedelta(minutes=i))
    response = client.get("/v1/highlights", params={"limit": 4})
    assert len(response.json()["items"]) == 4
    assert response.json()["next_cursor"] is None
    response = client.get("/v1/highlights", params={"limit": 2})
    assert response.json()["next_cursor"] is not None


@pytest.mark.parametrize("cursor", ["garbage", "not-a-date_abc", "2026-13-45T99:00:00_x"])
def test_invalid_cursor_is_422(client: TestClient, cursor: str) -> None:
    response = client.get("/v1/highlights", params={"cursor": cursor})
    assert response.status_code == 422
    assert "cursor" in response.json()["error"]["message"]


@pytest.mark.parametrize("limit", ["0", "-1", "51", "many"])
def test_limit_out_of_bounds_is_422(client: TestClient, limit: str) -> None:
    response = client.get("/v1/highlights", params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert "limit" in response.json()["error"]["message"]


@pytest.mark.parametrize("limit", ["1", "50"])
def test_limit_bounds_are_inclusive(client: TestClient, limit: str) -> None:
    assert client.get("/v1/highlights", params={"limit": limit}).status_code == 200


# --- starting playback -----------------------------------------------------------------------


def test_playback_of_a_ready_asset_gives_a_master_url(client: TestClient, ready: Asset) -> None:
    response = client.post(f"/v1/playback/{ready.id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["asset_id"] == ready.id
    assert body["master_url"].endswith("/master.m3u8")
    assert "/v1/stream/" in body["master_url"]
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires > datetime.now(UTC) + timedelta(hours=1)


def test_urls_handed_to_fans_use_the_public_base_url(
    settings: Settings, client: TestClient, ready: Asset
) -> None:
    public = "https://play.example.com"
    app = client.app
    assert isinstance(app, FastAPI)
    app.state.settings = settings.model_copy(update={"public_base_url": public})
    internal = {"Host": "10.0.0.5:8000"}
    listed = client.get("/v1/highlights", headers=internal).json()["items"][0]
    assert listed["playback_url"] == f"{public}/v1/playback/{ready.id}"
    master = client.post(f"/v1/playback/{ready.id}", headers=internal).json()["master_url"]
    assert master.startswith(f"{public}/v1/stream/")


def test_master_playlist_is_served(client: TestClient, ready: Asset) -> None:
    response = client.get(start(client, ready.id))
    assert response.status_code == 200
    assert response.content == MASTER
    assert response.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert response.headers["cache-control"].startswith("private")


def test_media_playlist_relative_to_master_is_served(client: TestClient, ready: Asset) -> None:
    master = start(client, ready.id)
    # A player resolves the master's relative URI against the master's URL.
    media_url = str(httpx2.URL(f"http://testserver{master}").join("v0/index.m3u8"))
    response = client.get(local(media_url))
    assert response.status_code == 200
    assert response.content == MEDIA
    assert response.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert "private" in response.headers["cache-control"]
    init_url = str(httpx2.URL(media_url).join("init.mp4"))
    assert client.get(local(init_url)).content == b"init-bytes"


def test_segment_is_served_with_an_immutable_cache_header(client: TestClient, ready: Asset) -> None:
    response = client.get(f"{stream_base(start(client, ready.id))}/v0/seg_000.m4s")
    assert response.status_code == 200
    assert response.content == SEGMENT
    assert "immutable" in response.headers["cache-control"]
    assert response.headers["cache-control"].startswith("private")  # no shared cache
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(SEGMENT))


def test_byte_range_is_206(client: TestClient, ready: Asset) -> None:
    url = f"{stream_base(start(client, ready.id))}/v0/seg_000.m4s"
    response = client.get(url, headers={"Range": "bytes=2-5"})
    assert response.status_code == 206
    assert response.content == SEGMENT[2:6]
    assert response.headers["content-range"] == f"bytes 2-5/{len(SEGMENT)}"
    assert response.headers["content-length"] == "4"


def test_suffix_range(client: TestClient, ready: Asset) -> None:
    url = f"{stream_base(start(client, ready.id))}/v0/seg_000.m4s"
    response = client.get(url, headers={"Range": "bytes=-3"})
    assert response.status_code == 206
    assert response.content == SEGMENT[-3:]
    n = len(SEGMENT)
    assert response.headers["content-range"] == f"bytes {n - 3}-{n - 1}/{n}"


def test_open_ended_range_and_range_past_the_end_are_clamped(
    client: TestClient, ready: Asset
) -> None:
    url = f"{stream_base(start(client, ready.id))}/v0/seg_000.m4s"
    response = client.get(url, headers={"Range": "bytes=10-"})
    assert response.status_code == 206
    assert response.content == SEGMENT[10:]
    response = client.get(url, headers={"Range": "bytes=10-999"})
    assert response.status_code == 206
    assert response.content == SEGMENT[10:]
    assert response.headers["content-range"] == f"bytes 10-15/{len(SEGMENT)}"


@pytest.mark.parametrize(
    "header", ["bytes=100-200", "bytes=16-", "bytes=5-2", "bytes=-0", "pages=1-2"]
)
def test_unsatisfiable_range_is_416(client: TestClient, ready: Asset, header: str) -> None:
    url = f"{stream_base(start(client, ready.id))}/v0/seg_000.m4s"
    response = client.get(url, headers={"Range": header})
    assert response.status_code == 416
    assert response.json()["error"]["code"] == "range_not_satisfiable"


@pytest.mark.parametrize(
    "status", [AssetStatus.QUEUED, AssetStatus.PROCESSING, AssetStatus.FAILED, AssetStatus.DELETED]
)
def test_asset_that_is_not_ready_is_not_playable(
    client: TestClient, db: Session, league: League, status: AssetStatus
) -> None:
    asset = add_asset(db, league, status=status, ready_at=None)
    response = client.post(f"/v1/playback/{asset.id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_playable"


def test_deleted_asset_that_was_ready_is_not_playable(
    client: TestClient, db: Session, ready: Asset
) -> None:
    ready.status = AssetStatus.DELETED
    db.commit()
    response = client.post(f"/v1/playback/{ready.id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_playable"


def test_unknown_asset_is_not_playable(client: TestClient) -> None:
    response = client.post("/v1/playback/0123456789abcdef0123456789abcdef")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_playable"


# --- tokens on the stream --------------------------------------------------------------------


def _flip(char: str) -> str:
    return "A" if char != "A" else "B"


def test_tampered_signature_is_403(client: TestClient, ready: Asset) -> None:
    master = start(client, ready.id)
    token = master.split("/")[3]
    tampered = token[:-1] + _flip(token[-1])
    response = client.get(f"/v1/stream/{tampered}/master.m3u8")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_token"
    assert MASTER not in response.content


def test_token_for_one_asset_cannot_be_repointed_at_another(
    client: TestClient, db: Session, league: League, ready: Asset
) -> None:
    other = add_asset(db, league, title="other")
    publish_media(client, other)
    token = start(client, ready.id).split("/")[3]
    kid, _body, signature = token.split(".")
    forged_claims = tokens._b64(
        f'{{"a":"{other.id}","exp":9999999999,"p":"hls/{other.id}/1"}}'.encode()
    )
    response = client.get(f"/v1/stream/{kid}.{forged_claims}.{signature}/master.m3u8")
    assert response.status_code == 403


def test_expired_token_is_403(client: TestClient, ready: Asset) -> None:
    expired = tokens.sign(
        keys_of(client), {"a": ready.id, "p": f"hls/{ready.id}/1"}, ttl_s=-31
    )  # past the 30 s leeway
    response = client.get(f"/v1/stream/{expired}/master.m3u8")
    assert response.status_code == 403
    assert "expired" in response.json()["error"]["message"]
    # The same claims, unexpired, do play: the refusal is about time only.
    fresh = tokens.sign(keys_of(client), {"a": ready.id, "p": f"hls/{ready.id}/1"}, ttl_s=60)
    assert client.get(f"/v1/stream/{fresh}/master.m3u8").status_code == 200


@pytest.mark.usefixtures("ready")
@pytest.mark.parametrize("token", ["nonsense", "a.b", "a.b.c.d", "k1..", "k9.e30.xyz"])
def test_malformed_token_is_403(client: TestClient, token: str) -> None:
    response = client.get(f"/v1/stream/{token}/master.m3u8")
    assert response.status_code == 403


def test_token_with_non_ascii_signature_is_403(client: TestClient, ready: Asset) -> None:
    token = start(client, ready.id).split("/")[3]
    kid, body, _signature = token.split(".")
    response = client.get(f"/v1/stream/{kid}.{body}.%C3%A9/master.m3u8")
    assert response.status_code == 403


# --- paths under a token ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "../../sources/{id}/original",
        "%2e%2e/%2e%2e/sources/{id}/original",
        "%2E%2E%2F%2E%2E%2Fsources%2F{id}%2Foriginal",
        "v0/../../../../sources/{id}/original",
        "..%2f..%2fsources%2f{id}%2foriginal",
        "../../../../hls/{id}/1/master.m3u8",
        "../2/master.m3u8",
        "%2fetc%2fpasswd",
        "..%5c..%5csources%5c{id}%5coriginal",
        ".",
        "",
    ],
)
def test_path_traversal_never_leaves_the_asset_prefix(
    client: TestClient, ready: Asset, path: str
) -> None:
    base = stream_base(start(client, ready.id))
    status, body = raw_get(client, f"{base}/{path.format(id=ready.id)}")
    assert status in (404, 422), (status, body)
    assert SOURCE not in body
    assert MASTER not in body
    assert b'"code":"invalid_input"' in body or b'"code":"not_found"' in body


def test_raw_requests_reach_the_stream(client: TestClient, ready: Asset) -> None:
    """The raw helper used above does reach the route (so its 404/422s are the route's)."""
    base = stream_base(start(client, ready.id))
    assert raw_get(client, f"{base}/master.m3u8") == (200, MASTER)
    status, _body = raw_get(client, f"{base}/../{base.rsplit('/', 1)[1]}/master.m3u8")
    assert status == 422


def test_dot_segments_inside_the_prefix_resolve(client: TestClient, ready: Asset) -> None:
    base = stream_base(start(client, ready.id))
    response = client.get(f"{base}/v0/%2e%2e/master.m3u8")
    assert response.status_code == 200
    assert response.content == MASTER


@pytest.mark.parametrize("path", ["notes.txt", "v0/seg_000.M4S.bak", "v0", "master.m3u8.txt"])
def test_disallowed_extension_is_404(client: TestClient, ready: Asset, path: str) -> None:
    base = stream_base(start(client, ready.id))
    response = client.get(f"{base}/{path}")
    assert response.status_code == 404
    assert b"not media" not in response.content


@pytest.mark.parametrize("path", ["v9/index.m3u8", "v0/seg_999.m4s", "missing.mp4"])
def test_missing_media_file_is_404(client: TestClient, ready: Asset, path: str) -> None:
    base = stream_base(start(client, ready.id))
    response = client.get(f"{base}/{path}")
    assert response.status_code == 404, (response.status_code, response.text)
    assert response.json()["error"]["code"] == "not_found"
    # Nothing about the store's layout leaks to the client.
    assert "hls/" not in response.text


@pytest.mark.parametrize("path", ["v0/%01seg.m4s", "v0/x.courtside-partial/seg.m4s"])
def test_unstorable_media_path_is_a_client_error(
    client: TestClient, ready: Asset, path: str
) -> None:
    base = stream_base(start(client, ready.id))
    response = client.get(f"{base}/{path}")
    assert response.status_code in (404, 422), (response.status_code, response.text)
    assert response.json()["error"]["code"] in ("not_found", "invalid_input", "invalid_key")
