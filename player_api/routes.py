"""Fan-facing API: catalog, playback, media."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from core.deps import SessionDep, SettingsDep
from core.errors import NotFound, ObjectNotFound
from core.settings import Settings
from core.storage import ObjectStore
from player_api import catalog, playback
from player_api.access import RightsContext, RightsDep, ViewerDep, viewer_of
from player_api.media_response import media_response, playlist_response
from rights import tokens
from rights.memo import TokenMemo
from rights.model import ItemRights

router = APIRouter(prefix="/v1", tags=["playback"])


def public_url(request: Request, settings: Settings, name: str, **params: str) -> str:
    """An absolute URL for route ``name`` as fans must use it: on the configured public base
    URL when there is one (a TLS proxy or CDN in front), else on the request's own address."""
    url = request.url_for(name, **params)
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + url.path
    return str(url)


def signing_keys(request: Request) -> tokens.SigningKeys:
    keys: tokens.SigningKeys = request.app.state.signing_keys
    return keys


@router.get("/highlights", response_model=catalog.HighlightPage)
def list_highlights(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    rights: RightsDep,
    viewer: ViewerDep,
    league: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 24,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> catalog.HighlightPage:
    """Ready highlights the viewer may watch now (their region, platform, the time), newest
    first. **Who:** anyone, signed in or not."""
    assets, next_cursor = catalog.list_watchable(
        session,
        lambda batch: catalog.allowed_ids(rights, session, batch, viewer, datetime.now(UTC)),
        league=league,
        limit=limit,
        cursor=cursor,
    )
    items = [
        catalog.HighlightOut(
            id=a.id,
            league=a.league.slug,
            league_name=a.league.name,
            title=a.title,
            description=a.description,
            duration_s=a.duration_s,
            published_at=a.ready_at or a.created_at,
            playback_url=public_url(request, settings, "start_playback", asset_id=a.id),
        )
        for a in assets
    ]
    return catalog.HighlightPage(items=items, next_cursor=next_cursor)


class PlaybackOut(BaseModel):
    asset_id: str
    master_url: str
    expires_at: datetime


@router.post(
    "/playback/{asset_id}",
    response_model=PlaybackOut,
    responses={451: {"description": "Not available to this viewer now (region, time, platform)"}},
)
def start_playback(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    rights: RightsDep,
    viewer: ViewerDep,
    asset_id: str,
) -> PlaybackOut:
    """A master playlist URL for a ready highlight the viewer may watch now; 451 with the
    reason (and, for windows, when it becomes available) otherwise. **Who:** anyone."""
    started = playback.start_playback(
        session,
        signing_keys(request),
        rights,
        viewer,
        asset_id,
        ttl_s=settings.playback_token_ttl_s,
        now=datetime.now(UTC),
    )
    url = public_url(request, settings, "stream_media", token=started.token, path="master.m3u8")
    return PlaybackOut(asset_id=asset_id, master_url=url, expires_at=started.expires_at)


@router.get("/stream/{token}/{path:path}", include_in_schema=True)
async def stream_media(
    request: Request,
    token: str,
    path: str,
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    """Playlists and segments of one playback. Each request re-checks the token, the
    connecting viewer's country and the item's rights. **Who:** holders of a valid playback
    token, from the country it was issued in."""
    # The hottest route: async, no injected dependencies (each costs a resolution per
    # request), the checks on the event loop (CPU only, rights from the per-process cache);
    # the database and the store are reached through the thread pool only when needed.
    state = request.app.state
    settings: Settings = state.settings
    store: ObjectStore = state.store
    rights: RightsContext = state.rights
    viewer = viewer_of(request, rights)
    now = datetime.now(UTC)
    token_memo: TokenMemo = state.token_memo
    claims = token_memo.verify(token, now=now.timestamp(), leeway_s=settings.token_leeway_s)
    grant = playback.grant_of(claims)
    key = playback.object_key(grant, path)
    item = rights.cache.cached(grant.asset_id)
    if item is None:
        item = await run_in_threadpool(_load_rights, request, rights, grant.asset_id)
    playback.check_stream(grant, item, viewer, now, rights.decisions)
    try:
        return await run_in_threadpool(_serve, store, key, range_header)
    except ObjectNotFound:
        # Say nothing about the store's layout to the client.
        raise NotFound("no such media file") from None


def _load_rights(request: Request, rights: RightsContext, asset_id: str) -> ItemRights | None:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        return rights.cache.rights_for_id(session, asset_id)


def _serve(store: ObjectStore, key: str, range_header: str | None) -> Response:
    if playback.is_playlist(key):
        return playlist_response(store, key)
    return media_response(store, key, range_header)


# Kept out of the OpenAPI schema: an operational probe, not part of the fan API.
@router.get("/ping", include_in_schema=False)
async def ping() -> Response:
    """A constant answer, for load balancers and as the floor of ``bench playback``: what the
    server manages when a request does nothing. **Who:** anyone."""
    return Response(b"pong\n", media_type="text/plain")
