"""Fan-facing API: catalog, highlight detail and poster, playback, media, views."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import posixpath
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from core.deps import SessionDep, SettingsDep, StoreDep
from core.errors import NotFound, ObjectNotFound
from core.models import Asset
from core.settings import Settings
from core.storage import ObjectStore
from player_api import catalog, highlights, i18n, playback
from player_api.access import RightsContext, RightsDep, ViewerDep, viewer_of
from player_api.live_viewers import LiveViewers
from player_api.media_response import (
    PlaylistCache,
    media_response,
    playlist_body_response,
    playlist_response,
)
from player_api.schemas import HighlightDetail, HighlightPage, LivePlayback, PlaybackOut, ViewOut
from player_api.views import ViewCounter, counter_for
from rights import tokens
from rights.memo import TokenMemo
from rights.model import ItemRights, Viewer

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["fans"])


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


LIST_CACHE = "private, max-age=10"
POSTER_CACHE = "public, max-age=300"
STORYBOARD_CACHE = "private, max-age=300"
STORYBOARD_VTT = "storyboard.vtt"
NOT_AVAILABLE: dict[int | str, dict[str, Any]] = {
    451: {"description": "Not available to this viewer now (region, time, platform)"}
}


def links_for(request: Request, settings: Settings) -> highlights.Links:
    """Absolute URLs of an item's playback, poster and storyboard, for this request."""

    def storyboard(asset_id: str) -> str:
        vtt = STORYBOARD_VTT
        return public_url(request, settings, "highlight_storyboard", asset_id=asset_id, file=vtt)

    return highlights.Links(
        playback=lambda a: public_url(request, settings, "start_playback", asset_id=a),
        poster=lambda a: public_url(request, settings, "highlight_poster", asset_id=a),
        storyboard=storyboard,
    )


def _allowed(
    rights: RightsContext, session: Session, viewer: Viewer, now: datetime
) -> Callable[[list[Asset]], set[str]]:
    return lambda batch: catalog.allowed_ids(rights, session, batch, viewer, now)


def _wanted(request: Request, lang: str | None) -> list[str]:
    return i18n.preferences(lang, request.headers.get("accept-language"))


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def conditional_json(
    request: Request, model: BaseModel, *, cache_control: str, languages: list[str]
) -> Response:
    """``model`` as JSON with an ETag of its bytes; 304 when the client already has them."""
    body = model.model_dump_json().encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Language"}
    if languages:
        headers["Content-Language"] = ", ".join(dict.fromkeys(languages))
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/highlights",
    response_model=HighlightPage,
    responses={304: {"description": "Not modified (If-None-Match matched the ETag)"}},
)
def list_highlights(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    rights: RightsDep,
    viewer: ViewerDep,
    league: Annotated[str | None, Query(max_length=64, description="league slug")] = None,
    competition: Annotated[str | None, Query(max_length=64)] = None,
    team: Annotated[str | None, Query(max_length=64, description="team slug")] = None,
    match: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="match id")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=catalog.MAX_QUERY_CHARS)] = None,
    sort: catalog.Sort = "newest",
    limit: Annotated[int, Query(ge=1, le=50)] = 24,
    cursor: Annotated[str | None, Query(max_length=catalog.MAX_CURSOR_CHARS)] = None,
    lang: Annotated[str | None, Query(max_length=i18n.MAX_TAG_CHARS)] = None,
    live: Annotated[
        bool | None, Query(description="true: only live streams on air; false: none of them")
    ] = None,
) -> Response:
    """Highlights and live streams (``is_live``) the viewer may watch now (their region,
    platform, the time), filtered and sorted, in their language (``lang``, else
    Accept-Language, else English); an unknown league, team or competition simply matches
    nothing. Conditional GET with ETag.
    **Who:** anyone, signed in or not."""
    filters = catalog.validate(
        catalog.Filters(league, competition, team, match, tag, q, sort, live)
    )
    now = datetime.now(UTC)
    allowed = _allowed(rights, session, viewer, now)
    assets, next_cursor = catalog.list_watchable(
        session, allowed, filters, limit=limit, cursor=cursor
    )
    wanted = _wanted(request, lang)
    items = highlights.present(session, assets, wanted, links_for(request, settings), now)
    page = HighlightPage(items=items, next_cursor=next_cursor)
    served = [item.lang for item in items] or wanted[:1]
    return conditional_json(request, page, cache_control=LIST_CACHE, languages=served)


@router.get(
    "/highlights/{asset_id}",
    response_model=HighlightDetail,
    responses={**NOT_AVAILABLE, 304: {"description": "Not modified"}},
)
def get_highlight(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    rights: RightsDep,
    viewer: ViewerDep,
    asset_id: Annotated[str, Path(max_length=64)],
    lang: Annotated[str | None, Query(max_length=i18n.MAX_TAG_CHARS)] = None,
) -> Response:
    """One highlight and up to 8 related ones (same match, then same teams, then same
    league), all watchable by the viewer. 404 if there is no such playable highlight, 451
    with the reason when it exists but not for this viewer now. **Who:** anyone."""
    now = datetime.now(UTC)
    asset = highlights.watchable_asset(session, rights, asset_id, viewer, now)
    allowed = _allowed(rights, session, viewer, now)
    wanted = _wanted(request, lang)
    links = links_for(request, settings)
    found = highlights.detail(session, asset, allowed, wanted, links, now)
    return conditional_json(request, found, cache_control=LIST_CACHE, languages=[found.lang])


@router.get(
    "/highlights/{asset_id}/poster",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **NOT_AVAILABLE},
)
def highlight_poster(
    session: SessionDep,
    store: StoreDep,
    rights: RightsDep,
    viewer: ViewerDep,
    asset_id: Annotated[str, Path(max_length=64)],
) -> Response:
    """The highlight's poster (JPEG), for viewers who may watch it. **Who:** anyone."""
    asset = highlights.watchable_asset(session, rights, asset_id, viewer, datetime.now(UTC))
    if asset.poster_key is None:
        raise NotFound("this highlight has no poster yet")
    try:
        body = store.get_bytes(asset.poster_key)
    except ObjectNotFound:
        raise NotFound("this highlight has no poster yet") from None
    return Response(body, media_type="image/jpeg", headers={"Cache-Control": POSTER_CACHE})


# The storyboard's files: its WebVTT and the sprite sheets it names (relative URIs).
_STORYBOARD_FILE = re.compile(r"storyboard(?:_\d{1,4}\.jpg|\.vtt)")


@router.get(
    "/highlights/{asset_id}/storyboard/{file}",
    response_class=Response,
    responses={200: {"content": {"text/vtt": {}, "image/jpeg": {}}}, **NOT_AVAILABLE},
)
def highlight_storyboard(
    session: SessionDep,
    store: StoreDep,
    rights: RightsDep,
    viewer: ViewerDep,
    asset_id: Annotated[str, Path(max_length=64)],
    file: Annotated[str, Path(max_length=32)],
) -> Response:
    """The highlight's storyboard for scrubbing previews: ``storyboard.vtt`` (WebVTT cues with
    ``#xywh=`` fragments) and the ``storyboard_<n>.jpg`` sheets it names, for viewers who may
    watch it. **Who:** anyone."""
    if not _STORYBOARD_FILE.fullmatch(file):
        raise NotFound("no such storyboard file")
    asset = highlights.watchable_asset(session, rights, asset_id, viewer, datetime.now(UTC))
    if asset.storyboard_key is None:
        raise NotFound("this highlight has no storyboard yet")
    try:
        body = store.get_bytes(f"{posixpath.dirname(asset.storyboard_key)}/{file}")
    except ObjectNotFound:
        raise NotFound("no such storyboard file") from None
    media_type = "text/vtt" if file.endswith(".vtt") else "image/jpeg"
    return Response(body, media_type=media_type, headers={"Cache-Control": STORYBOARD_CACHE})


@router.post("/playback/{asset_id}", response_model=PlaybackOut, responses=NOT_AVAILABLE)
def start_playback(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    rights: RightsDep,
    viewer: ViewerDep,
    asset_id: str,
) -> PlaybackOut:
    """A master playlist URL for a ready highlight the viewer may watch now, with its poster,
    storyboard (WebVTT with sprite sheets) and the URL to report a view to; 451 with the
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

    def stream(path: str) -> str:
        return public_url(request, settings, "stream_media", token=started.token, path=path)

    board = started.storyboard_path
    return PlaybackOut(
        asset_id=asset_id,
        master_url=stream("master.m3u8"),
        expires_at=started.expires_at,
        poster_url=links_for(request, settings).poster(asset_id) if started.has_poster else None,
        storyboard_url=stream(board) if board else None,
        view_url=public_url(request, settings, "report_view", token=started.token),
        live=_live_playback(started.live, stream),
    )


def _live_playback(
    facts: playback.LiveFacts | None, stream: Callable[[str], str]
) -> LivePlayback | None:
    if facts is None:
        return None
    return LivePlayback(
        dvr_url=stream("dvr.m3u8"),
        dvr_window_s=facts.dvr_window_s,
        started_at=facts.started_at,
        on_air=facts.on_air,
    )


@router.post("/views/{token}", response_model=ViewOut, status_code=202)
def report_view(request: Request, token: Annotated[str, Path(max_length=2048)]) -> ViewOut:
    """The player reports a view after a few seconds of play; a playback (its token) counts
    once however often it reports. **Who:** holders of a valid playback token."""
    state = request.app.state
    settings: Settings = state.settings
    now = datetime.now(UTC).timestamp()
    token_memo: TokenMemo = state.token_memo
    claims = token_memo.verify(token, now=now, leeway_s=settings.token_leeway_s)
    grant = playback.grant_of(claims)
    ttl_s = int(claims["exp"] - now) + settings.token_leeway_s
    try:
        counted = view_counter(request).count(token, grant.asset_id, ttl_s=ttl_s)
    except redis.RedisError:
        # A view is analytics: losing one beats failing the player's request.
        log.warning("view not counted: Redis unavailable", exc_info=True)
        counted = False
    return ViewOut(counted=counted)


def view_counter(request: Request) -> ViewCounter:
    """The process's view counter, made on first use from the settings' Redis URL."""
    state = request.app.state
    counter: ViewCounter | None = getattr(state, "view_counter", None)
    if counter is None:
        counter = state.view_counter = counter_for(state.settings.redis_url)
    return counter


# The stream route reads its parameters from the request itself (FastAPI's validation of
# declared parameters cost more than the rest of a cached playlist request); they are
# documented here instead. Both are plain strings: object_key validates the path.
_STREAM_PARAMETERS = [
    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "range", "in": "header", "required": False, "schema": {"type": "string"}},
]


@router.get("/stream/{token}/{path:path}", openapi_extra={"parameters": _STREAM_PARAMETERS})
async def stream_media(request: Request) -> Response:
    """Playlists and segments of one playback. Each request re-checks the token, the
    connecting viewer's country and the item's rights. **Who:** holders of a valid playback
    token, from the country it was issued in."""
    # The hottest route: async, no injected dependencies or declared parameters (each costs
    # a resolution per request), the checks on the event loop (CPU only, rights from the
    # per-process cache, playlists from a short-lived cache); the database and the store
    # are reached through the thread pool only when needed.
    token: str = request.path_params["token"]
    path: str = request.path_params["path"]
    range_header = request.headers.get("range")
    state = request.app.state
    settings: Settings = state.settings
    store: ObjectStore = state.store
    rights: RightsContext = state.rights
    viewer = _stream_viewer(request, rights)
    now = datetime.now(UTC)
    token_memo: TokenMemo = state.token_memo
    claims = token_memo.verify(token, now=now.timestamp(), leeway_s=settings.token_leeway_s)
    grant = playback.grant_of(claims)
    key = playback.object_key(grant, path)
    item = rights.cache.cached(grant.asset_id)
    if item is None:
        item = await run_in_threadpool(_load_rights, request, rights, grant.asset_id)
    playback.check_stream(grant, item, viewer, now, rights.decisions)
    playlists = _playlist_cache(state)
    is_playlist = playback.is_playlist(key)
    live = is_playlist and key.startswith(playback.LIVE_PREFIX)
    if live:
        _count_viewer(state, grant)
    if is_playlist and (body := playlists.get(key)) is not None:
        return playlist_body_response(body, live=live)  # no thread-pool hand-off, no store read
    try:
        return await run_in_threadpool(_serve, store, key, range_header, playlists, live)
    except ObjectNotFound:
        # Say nothing about the store's layout to the client.
        raise NotFound("no such media file") from None


def _load_rights(request: Request, rights: RightsContext, asset_id: str) -> ItemRights | None:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        return rights.cache.rights_for_id(session, asset_id)


# Bounds of the stream route's viewer memo: entries, and the request head size worth keeping.
_VIEWER_MEMO_ITEMS = 4096
_VIEWER_MEMO_HEAD_BYTES = 4096


def _stream_viewer(request: Request, rights: RightsContext) -> Viewer:
    """``viewer_of(request, rights)``, remembered by everything it can read: the peer's
    address, every header line and the query string. A player repeats them exactly on each
    request, and the GeoIP databases and proxy settings do not change while the process runs,
    so the answer is the same; it cost more than all the other checks together."""
    scope = request.scope
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    if sum(len(name) + len(value) for name, value in headers) > _VIEWER_MEMO_HEAD_BYTES:
        return viewer_of(request, rights)  # not worth the memory
    client = scope.get("client")
    key = (client[0] if client else None, tuple(headers), scope.get("query_string", b""))
    state = request.app.state
    memo: dict[tuple[object, ...], Viewer] | None = getattr(state, "stream_viewers", None)
    if memo is None:
        memo = state.stream_viewers = {}
    viewer = memo.get(key)
    if viewer is None:
        viewer = viewer_of(request, rights)
        if len(memo) >= _VIEWER_MEMO_ITEMS:
            memo.clear()
        memo[key] = viewer
    return viewer


def _playlist_cache(state: State) -> PlaylistCache:
    """The process's playlist cache, made on first use."""
    cache: PlaylistCache | None = getattr(state, "playlist_cache", None)
    if cache is None:
        cache = state.playlist_cache = PlaylistCache()
    return cache


def _serve(
    store: ObjectStore, key: str, range_header: str | None, playlists: PlaylistCache, live: bool
) -> Response:
    if playback.is_playlist(key):
        return playlist_response(store, key, playlists, live=live)
    return media_response(store, key, range_header)


def _count_viewer(state: State, grant: playback.StreamGrant) -> None:
    """Note a live playback's playlist request; flush the counts off the loop when due."""
    viewers: LiveViewers | None = getattr(state, "live_viewers", None)
    if viewers is None:
        client = redis.Redis.from_url(state.settings.redis_url, socket_timeout=1)
        viewers = state.live_viewers = LiveViewers(client)
    if (batch := viewers.seen(grant.asset_id, grant.session_id)) is not None:
        asyncio.get_running_loop().run_in_executor(None, viewers.flush, batch)


# Kept out of the OpenAPI schema: an operational probe, not part of the fan API.
@router.get("/ping", include_in_schema=False)
async def ping() -> Response:
    """A constant answer, for load balancers and as the floor of ``bench playback``: what the
    server manages when a request does nothing. **Who:** anyone."""
    return Response(b"pong\n", media_type="text/plain")
