"""Fixtures for the rights API and enforcement tests (test_rights_api.py, test_attacks.py).

An app with MaxMind's test GeoIP databases, one trusted proxy network and a CDN country
header; clients whose TCP peer address is chosen per test; a league of our own with no
grant at all (the shared ``league`` fixture is licensed worldwide); and API keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.auth import create_api_key
from core.models import (
    Asset,
    Competition,
    League,
    Match,
    RightsGrant,
    Role,
    Season,
)
from core.settings import Settings
from core.storage import LocalObjectStore
from rights.cache import RightsCache
from tests import published
from tests.conftest import make_settings
from web.app import create_app

GEOIP_DIR = Path(__file__).resolve().parents[3] / "shared" / "geoip"
CITY_DB = GEOIP_DIR / "GeoIP2-City-Test.mmdb"
ANONYMOUS_DB = GEOIP_DIR / "GeoIP2-Anonymous-IP-Test.mmdb"

TRUSTED_PROXY_NET = "10.0.0.0/8"
CDN_HEADER = "cf-ipcountry"

ClientFrom = Callable[[str], TestClient]


@pytest.fixture
def geo_settings(tmp_path: Path, pg_url: str) -> Settings:
    return make_settings(
        tmp_path,
        pg_url,
        geoip_city_db=CITY_DB,
        geoip_anonymous_db=ANONYMOUS_DB,
        trusted_proxies=[TRUSTED_PROXY_NET],
        cdn_country_header=CDN_HEADER,
    )


def build_app(settings: Settings, sessions: sessionmaker[Session]) -> FastAPI:
    app = create_app(settings)
    app.state.sessionmaker = sessions
    return app


@pytest.fixture
def geo_app(geo_settings: Settings, sessions: sessionmaker[Session]) -> Iterator[FastAPI]:
    app = build_app(geo_settings, sessions)
    yield app
    app.state.rights.geo.close()


@pytest.fixture
def client_from(geo_app: FastAPI) -> ClientFrom:
    """``client_from(ip)``: a TestClient whose requests arrive from TCP peer ``ip``.

    The clients are not entered as context managers: the app's lifespan would close the
    GeoIP databases when the first of several clients exits (``geo_app`` closes them)."""

    def make(ip: str) -> TestClient:
        return TestClient(geo_app, client=(ip, 50000))

    return make


@pytest.fixture
def rights_cache(geo_app: FastAPI) -> RightsCache:
    cache = geo_app.state.rights_cache
    assert isinstance(cache, RightsCache)
    return cache


@pytest.fixture
def rights_league(db: Session) -> League:
    """A league with no grant at all: rights tests license it themselves."""
    league = League(slug="rights-test", name="Rights Test League")
    db.add(league)
    db.commit()
    return league


@pytest.fixture
def rights_manager_key(db: Session, rights_league: League) -> str:
    _key, secret = create_api_key(
        db, role=Role.RIGHTS_MANAGER, leagues=[rights_league], name="rights manager"
    )
    db.commit()
    return secret


@pytest.fixture
def foreign_manager_key(db: Session, other_league: League) -> str:
    """A rights manager of another league."""
    _key, secret = create_api_key(
        db, role=Role.RIGHTS_MANAGER, leagues=[other_league], name="other manager"
    )
    db.commit()
    return secret


@pytest.fixture
def admin_key(db: Session) -> str:
    _key, secret = create_api_key(db, role=Role.ADMIN, name="admin")
    db.commit()
    return secret


@pytest.fixture
def rights_partner_key(db: Session, rights_league: League) -> str:
    _key, secret = create_api_key(db, role=Role.PARTNER, leagues=[rights_league], name="partner")
    db.commit()
    return secret


# --- helpers shared by the two files -----------------------------------------------------

MASTER = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nv0/index.m3u8\n"
MEDIA = b'#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2.0,\nseg_00000.m4s\n#EXT-X-ENDLIST\n'
SEGMENT_PATH = "v0/seg_00000.m4s"


def segment_bytes(asset: Asset) -> bytes:
    """Segment bytes unique to ``asset``, so a response can be traced to the asset it came from."""
    return f"SEGMENT-OF-{asset.id}".encode()


def add_asset(
    db: Session, league: League, *, title: str = "clip", match: Match | None = None
) -> Asset:
    """A READY asset with a master playlist key and one rendition (as transcoding leaves it)."""
    match_id = match.id if match is not None else None
    return published.add_asset(
        db, league, title=title, ready_at=datetime.now(UTC), match_id=match_id
    )


def publish_media(app: FastAPI, asset: Asset) -> None:
    """Fake HLS output for ``asset`` in the app's local store."""
    store = app.state.store
    assert isinstance(store, LocalObjectStore)
    prefix = f"hls/{asset.id}/1"
    store.put_bytes(f"{prefix}/master.m3u8", MASTER)
    store.put_bytes(f"{prefix}/v0/index.m3u8", MEDIA)
    store.put_bytes(f"{prefix}/v0/init.mp4", b"init-bytes")
    store.put_bytes(f"{prefix}/{SEGMENT_PATH}", segment_bytes(asset))


def insert_grant(
    db: Session, cache: RightsCache, scope_type: str, scope_id: object, **values: object
) -> RightsGrant:
    """An approved highlights grant written straight to the database (then the rights cache
    is invalidated, as the API does after every change)."""
    fields: dict[str, object] = {
        "license_type": "highlights",
        "status": "approved",
        "worldwide": False,
        **values,
    }
    row = RightsGrant(scope_type=scope_type, scope_id=str(scope_id), **fields)
    db.add(row)
    db.commit()
    cache.invalidate()
    return row


def scope_tree(
    db: Session,
    league: League,
    *,
    kickoff: datetime | None = None,
    home: str = "Home",
    away: str = "Away",
) -> Match:
    """Competition → season → match under ``league``; returns the match."""
    competition = Competition(league_id=league.id, slug="cup", name="Cup")
    db.add(competition)
    db.flush()
    season = Season(competition_id=competition.id, name="2026")
    db.add(season)
    db.flush()
    fixture = Match(season_id=season.id, home=home, away=away, kickoff=kickoff)
    db.add(fixture)
    db.commit()
    return fixture
