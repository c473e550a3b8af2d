"""``courtside``: the command line for operators and the quick start."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import migrate
from core.auth import create_api_key, create_user
from core.celery_app import QUEUES, configure_celery
from core.db import engine_for, make_sessionmaker, session_scope
from core.errors import Conflict, CourtsideError
from core.models import League, Role
from core.settings import Settings, get_settings
from core.storage import make_object_store


def _leagues(session: Session, slugs: Sequence[str]) -> list[League]:
    found = list(session.scalars(select(League).where(League.slug.in_(slugs))))
    missing = set(slugs) - {league.slug for league in found}
    if missing:
        raise CourtsideError(f"no such league: {', '.join(sorted(missing))}")
    return found


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> None:
    migrate.upgrade(settings.db_url)
    print(f"database at head: {settings.db_url.split('@')[-1]}")


def cmd_league_create(settings: Settings, args: argparse.Namespace) -> None:
    with session_scope(make_sessionmaker(engine_for(settings.db_url))) as session:
        if session.scalar(select(League.id).where(League.slug == args.slug)) is not None:
            raise Conflict(f"league '{args.slug}' already exists")
        session.add(League(slug=args.slug, name=args.name or args.slug))
    print(f"league created: {args.slug}")


def cmd_key_create(settings: Settings, args: argparse.Namespace) -> None:
    with session_scope(make_sessionmaker(engine_for(settings.db_url))) as session:
        leagues = _leagues(session, args.league or [])
        key, secret = create_api_key(session, role=Role(args.role), leagues=leagues, name=args.name)
    print(f"API key {key.prefix}… ({args.role}); shown once, store it now:\n{secret}")


def cmd_user_create(settings: Settings, args: argparse.Namespace) -> None:
    password = os.environ.get("COURTSIDE_NEW_USER_PASSWORD") or getpass.getpass("Password: ")
    with session_scope(make_sessionmaker(engine_for(settings.db_url))) as session:
        leagues = _leagues(session, args.league or [])
        user = create_user(
            session,
            email=args.email,
            handle=args.handle,
            password=password,
            role=Role(args.role),
            leagues=leagues,
        )
        print(f"user created: {user.email} ({args.role})")


def cmd_seed_demo(settings: Settings, _args: argparse.Namespace) -> None:
    from web.demo import demo_publish_command, seed_demo  # ffmpeg: only for this command

    configure_celery(settings)
    store = make_object_store(settings)
    with session_scope(make_sessionmaker(engine_for(settings.db_url))) as session:
        seed = seed_demo(session, store, settings=settings)
    print(f"demo league '{seed.league}': {len(seed.queued)} clip(s) queued for processing")
    print(f"demo partner key (shown once): {seed.partner_key}")
    print(f"demo live stream {seed.live_stream_id}: RTMP server {settings.rtmp_public_url}")
    print(f"  stream key (shown once): {seed.stream_key}")
    print("  go live from OBS with those two, or push a test pattern with ffmpeg:")
    print(f"  {demo_publish_command(settings.rtmp_public_url, seed.stream_key)}")


def cmd_worker(settings: Settings, args: argparse.Namespace) -> None:
    app = configure_celery(settings)
    argv = ["worker", "-Q", args.queues, "-c", str(args.concurrency), "-l", settings.log_level]
    if args.beat:
        argv += ["--beat", "-s", str(settings.var_dir / "celerybeat-schedule")]
    app.worker_main(argv=argv)


def cmd_beat(settings: Settings, _args: argparse.Namespace) -> None:
    app = configure_celery(settings)
    app.start(
        ["beat", "-l", settings.log_level, "-s", str(settings.var_dir / "celerybeat-schedule")]
    )


def cmd_rtmp_edge(settings: Settings, _args: argparse.Namespace) -> None:
    from ingest.rtmp_edge import exec_edge

    exec_edge(settings)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(
        "web.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,  # client IPs come only through the trusted-proxy setting
        # Comment fan-out sends one frame to thousands of sockets: compressing it per socket
        # (permessage-deflate, which browsers ask for) would cost ~100 KiB of zlib state and
        # a compression per connection; client frames are small comment actions.
        ws_per_message_deflate=False,
        ws_max_size=64 * 1024,
        # The sans-I/O protocol: ~10 KiB less per idle WebSocket than uvicorn's default legacy
        # one and less CPU per frame (``make bench B=comments`` measured both).
        ws="websockets-sansio",
        log_level=settings.log_level.lower(),
    )


Handler = Callable[[Settings, argparse.Namespace], None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="courtside", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(run=cmd_migrate)
    _league_parsers(sub)
    _identity_parsers(sub)
    sub.add_parser("seed-demo", help="demo league, partner key, clips").set_defaults(
        run=cmd_seed_demo
    )
    _process_parsers(sub)
    return parser


def _league_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    league = sub.add_parser("league", help="leagues").add_subparsers(dest="action", required=True)
    create = league.add_parser("create", help="create a league")
    create.add_argument("slug")
    create.add_argument("--name", default="")
    create.set_defaults(run=cmd_league_create)


def _identity_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    roles = [role.value for role in Role]
    key = sub.add_parser("key", help="API keys").add_subparsers(dest="action", required=True)
    create = key.add_parser("create", help="create an API key (printed once)")
    create.add_argument("--role", choices=roles, required=True)
    create.add_argument("--league", action="append", help="league slug (repeat for several)")
    create.add_argument("--name", default="")
    create.set_defaults(run=cmd_key_create)
    user = sub.add_parser("user", help="users").add_subparsers(dest="action", required=True)
    create = user.add_parser(
        "create", help="create a user (password from a prompt or COURTSIDE_NEW_USER_PASSWORD)"
    )
    create.add_argument("--email", required=True)
    create.add_argument("--handle", required=True)
    create.add_argument("--role", choices=roles, default=Role.FAN.value)
    create.add_argument("--league", action="append")
    create.set_defaults(run=cmd_user_create)


def _process_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("-Q", "--queues", default=",".join(QUEUES))
    worker.add_argument("-c", "--concurrency", type=int, default=2)
    worker.add_argument("--beat", action="store_true", help="embed the beat scheduler")
    worker.set_defaults(run=cmd_worker)
    sub.add_parser("beat", help="run the Celery beat scheduler").set_defaults(run=cmd_beat)
    edge = sub.add_parser("rtmp-edge", help="run the RTMP edge (nginx-rtmp) partners push to")
    edge.set_defaults(run=cmd_rtmp_edge)
    serve = sub.add_parser("serve", help="run the API and fan pages")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=cmd_serve)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Handler = args.run
    try:
        run(get_settings(), args)
    except CourtsideError as exc:
        print(f"courtside: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
