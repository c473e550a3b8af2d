"""The RTMP edge: nginx with libnginx-mod-rtmp, run from a config this module writes.

Partners push to ``<rtmp_public_url>/<stream key>``. nginx asks the API's ``on_publish``
hook, which refuses a bad key and otherwise renames the stream to its id (a 3xx with the id
as ``Location``), so the live workers pull ``<rtmp_pull_url>/<stream id>?pull=<token>``
without ever knowing a key. ``on_play`` admits only pullers with that stream's token, from
``rtmp_play_networks``: fans watch HLS through the API."""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidInput
from core.settings import Settings
from ingest.live_streams import hook_token

MODULE_PATH = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
HOOK_PATH = "/v1/live/hooks"


@dataclass(frozen=True)
class EdgeFiles:
    directory: Path
    config: Path


def render_config(settings: Settings, directory: Path) -> str:
    """nginx.conf for the edge: every path under ``directory``, nothing under /etc."""
    listen = _checked_listen(settings.rtmp_listen)
    hooks = f"{settings.rtmp_hook_base_url.rstrip('/')}{HOOK_PATH}"
    token = hook_token(settings)
    allow = "\n".join(
        f"            allow play {_checked_network(net)};" for net in settings.rtmp_play_networks
    )
    return f"""# Written by `courtside rtmp-edge` from the settings; edits are overwritten.
load_module {MODULE_PATH};
daemon off;
worker_processes 1;  # nginx-rtmp keeps stream state per worker: one worker sees every stream
pid {directory}/nginx.pid;
error_log {directory}/error.log info;

events {{
    worker_connections 1024;
}}

rtmp {{
    access_log {directory}/access.log;

    server {{
        listen {listen};
        chunk_size 4096;
        # A publisher that stops sending is dropped, so on_publish_done fires.
        drop_idle_publisher 10s;

        application live {{
            live on;
            record off;
            # Every publisher must be allowed by the API; its answer renames the stream from
            # the key to the stream id.
            on_publish {hooks}/on_publish?token={token};
            on_publish_done {hooks}/on_publish_done?token={token};
            # Pulling needs the stream's pull token (live workers, WHEP previews): stream ids
            # are public. The networks below narrow it further.
            on_play {hooks}/on_play?token={token};
            notify_method post;
{allow}
            deny play all;
        }}
    }}
}}
"""


def _checked_listen(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"rtmp_listen must be host:port, not {value!r}")
    if host:
        ipaddress.ip_address(host.strip("[]"))
    return value


def _checked_network(value: str) -> str:
    return str(ipaddress.ip_network(value, strict=False))


def write_config(settings: Settings, directory: Path) -> EdgeFiles:
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "nginx.conf"
    config.write_text(render_config(settings, directory))
    return EdgeFiles(directory, config)


def nginx_argv(files: EdgeFiles, nginx_bin: str = "nginx") -> list[str]:
    """The command that runs the edge in the foreground (``-p`` keeps nginx's own temporary
    paths under the edge directory)."""
    path = shutil.which(nginx_bin) or nginx_bin
    return [path, "-p", f"{files.directory}/", "-c", str(files.config), "-e", "stderr"]


def exec_edge(settings: Settings) -> None:
    """Replace this process with nginx running the edge."""
    if not MODULE_PATH.exists():
        raise InvalidInput(f"{MODULE_PATH} is missing: install libnginx-mod-rtmp (make install)")
    files = write_config(settings, settings.var_dir / "rtmp")
    argv = nginx_argv(files)
    os.execv(argv[0], argv)  # noqa: S606 - a fixed program, argv from our own settings
