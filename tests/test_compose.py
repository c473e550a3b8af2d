"""docker-compose.yml, the Dockerfiles and the RTMP config agree with the code they deploy.

No Docker engine is needed: the files are parsed and checked against the real CLI parser
(``web.cli.build_parser``), ``core.settings.Settings`` and ``core.celery_app.QUEUES``. Each
check is a function returning the problems it finds; the tests at the end feed those functions
broken documents, so every check is shown to fail when it should.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.celery_app import QUEUES
from core.settings import Settings
from ingest.rtmp_edge import render_config
from transcode.errors import FFmpegFailed
from transcode.runner import run_capture
from web.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")

REQUIRED_SERVICES = {
    "migrate",
    "api",
    "worker-transcode",
    "worker-live",
    "beat",
    "postgres",
    "redis",
    "minio",
    "minio-init",
    "rtmp",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SETTINGS_VARS = {f"COURTSIDE_{name.upper()}" for name in Settings.model_fields}
# ${NAME:?message}: required, no default. Secrets must look exactly like this.
REQUIRED_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_]\w*):\?(?P<msg>[^}]+)\}")
ANY_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/:@\s]+:(?P<password>[^@\s]+)@")

Doc = dict[str, Any]


# --- reading the files -------------------------------------------------------------------


def load_compose(path: Path = COMPOSE) -> Doc:
    doc = yaml.safe_load(path.read_text())  # resolves anchors and << merges, as compose does
    assert isinstance(doc, dict), f"{path.name} is not a mapping"
    return doc


def services_of(doc: Doc) -> dict[str, Doc]:
    services = doc.get("services")
    assert isinstance(services, dict), "no services"
    return services


def uses_project_image(service: Doc) -> bool:
    """Built from the Dockerfile at the project root (the API/worker/beat image)."""
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    return context is not None and (ROOT / context).resolve() == ROOT


def command_argv(service: Doc) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    return [str(word) for word in command or []]


def parse_cli(argv: list[str]) -> Any:
    """``argv[1:]`` through the real ``courtside`` parser; raises ValueError with its message."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        message = stderr.getvalue().strip().splitlines()[-1:] or [f"exit {exc.code}"]
        raise ValueError(f"{shlex.join(argv)!r}: {message[0]}") from None


def interpolated(node: object, pattern: re.Pattern[str] = ANY_VAR) -> set[str]:
    """Names of the ${VARIABLES} used anywhere in the document's values (not its comments)."""
    if isinstance(node, dict):
        return set().union(*(interpolated(v, pattern) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(interpolated(v, pattern) for v in node))
    return {m["name"] for m in pattern.finditer(node)} if isinstance(node, str) else set()


def environments(node: object) -> Iterator[dict[str, str]]:
    """Every ``environment`` block anywhere in the document (x- fields included), as a dict."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "environment":
                yield _env_dict(value)
            else:
                yield from environments(value)
    elif isinstance(node, list):
        for item in node:
            yield from environments(item)


def variables(doc: Doc) -> Iterator[tuple[str, str]]:
    """(NAME, value) of every environment-like entry: each key of every mapping anywhere
    (so x- anchors count even where nothing merges them) and each ``KEY=value`` list item."""
    for env in environments(doc):
        yield from env.items()
    yield from _mapping_items(doc)


def _mapping_items(node: object) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list):
                yield from _mapping_items(value)
            else:
                yield str(key), "" if value is None else str(value)
    elif isinstance(node, list):
        for item in node:
            yield from _mapping_items(item)


def _env_dict(value: object) -> dict[str, str]:
    if isinstance(value, list):  # ["KEY=value", ...]
        return dict(str(item).partition("=")[::2] for item in value)
    assert isinstance(value, dict), f"environment must be a list or a mapping, not {value!r}"
    return {str(key): "" if item is None else str(item) for key, item in value.items()}


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """Instructions (NAME, arguments) per build stage, continuation lines joined."""
    stages: list[list[tuple[str, str]]] = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, args = line.strip().partition(" ")
        if name.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((name.upper(), " ".join(args.split())))
    return stages


# --- checks: each returns the problems it finds ------------------------------------------


def missing_services(doc: Doc) -> list[str]:
    return [f"no service {name!r}" for name in sorted(REQUIRED_SERVICES - set(services_of(doc)))]


def cli_problems(doc: Doc) -> list[str]:
    problems = []
    for name, service in services_of(doc).items():
        if not uses_project_image(service):
            continue
        argv = command_argv(service)
        if not argv or argv[0] != "courtside":
            problems.append(f"{name}: command {argv!r} does not start with 'courtside'")
            continue
        try:
            parse_cli(argv)
        except ValueError as exc:
            problems.append(f"{name}: the courtside CLI refuses {exc}")
    return problems


def settings_var_problems(doc: Doc) -> list[str]:
    used = {key for key, _ in variables(doc) if key.startswith("COURTSIDE_")}
    used |= {name for name in interpolated(doc) if name.startswith("COURTSIDE_")}
    return [f"{var} is not a Settings field" for var in sorted(used - SETTINGS_VARS)]


def queue_problems(doc: Doc) -> list[str]:
    consumed: set[str] = set()
    problems = []
    for name, service in services_of(doc).items():
        argv = command_argv(service)
        if argv[:2] != ["courtside", "worker"]:
            continue
        queues = set(parse_cli(argv).queues.split(","))
        problems += [f"{name}: no queue {q!r} in QUEUES" for q in sorted(queues - set(QUEUES))]
        consumed |= queues
    problems += [f"no worker consumes queue {q!r}" for q in sorted(set(QUEUES) - consumed)]
    return problems


def dependency_problems(doc: Doc) -> list[str]:
    services = services_of(doc)
    problems = []
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        entries = {d: {} for d in depends} if isinstance(depends, list) else depends
        for target, spec in entries.items():
            condition = (spec or {}).get("condition", "service_started")
            if target not in services:
                problems.append(f"{name} depends on {target!r}, which is not a service")
            elif condition not in CONDITIONS:
                problems.append(f"{name} -> {target}: unknown condition {condition!r}")
            elif condition == "service_healthy" and not has_healthcheck(services[target]):
                problems.append(f"{name} waits for {target} to be healthy; it has no healthcheck")
    return problems


def has_healthcheck(service: Doc) -> bool:
    check = service.get("healthcheck")
    if isinstance(check, dict) and check.get("disable"):
        return False
    if isinstance(check, dict) and check.get("test"):
        return True
    # No healthcheck in compose: the image's own HEALTHCHECK, if it is our image.
    return uses_project_image(service) and "HEALTHCHECK" in DOCKERFILE.read_text()


def secret_problems(doc: Doc) -> list[str]:
    problems = []
    for key, value in variables(doc):
        if re.search("SECRET|PASSWORD", key) and not REQUIRED_VAR.fullmatch(value):
            problems.append(f"{key} must be ${{NAME:?message}}, not a value or a default")
        url = URL_PASSWORD.search(value)
        if url and not REQUIRED_VAR.fullmatch(url["password"]):
            problems.append(f"{key}: the password in the URL must be ${{NAME:?message}}")
    return problems


def env_example_problems(doc: Doc, example: str) -> list[str]:
    """Every required variable is listed in deploy/.env.example, secrets with no value."""
    listed = dict(
        line.partition("=")[::2]
        for line in example.splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    problems = []
    for name in sorted(interpolated(doc, REQUIRED_VAR)):
        if name not in listed:
            problems.append(f"{name} is required but not in deploy/.env.example")
        elif re.search("SECRET|PASSWORD", name) and listed[name].strip():
            problems.append(f"deploy/.env.example gives {name} a value; leave secrets empty")
    return problems


def bind_mount_problems(doc: Doc) -> list[str]:
    problems = []
    for name, service in services_of(doc).items():
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0] if isinstance(volume, str) else ""
            if source.startswith((".", "/")) and not (ROOT / source).exists():
                problems.append(f"{name}: bind-mount source {source} does not exist")
        build = service.get("build")
        if isinstance(build, str):
            build = {"context": build}
        if build is not None:
            dockerfile = ROOT / build["context"] / build.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                problems.append(f"{name}: no {dockerfile.relative_to(ROOT)}")
    return problems


def dockerfile_problems(text: str) -> list[str]:
    stages = dockerfile_stages(text)
    if not stages:
        return ["no FROM"]
    final = stages[-1]
    runs = " && ".join(args for name, args in final if name == "RUN")
    users = [args for name, args in final if name == "USER"]
    problems = []
    if final[0][1].split()[0] != "python:3.11-slim-bookworm":
        problems.append(f"the runtime stage is {final[0][1]!r}, not python:3.11-slim-bookworm")
    if not re.search(r"apt-get install[^&;]*(?<![\w-])ffmpeg(?![\w-])", runs):
        problems.append("the runtime stage does not apt-get install ffmpeg")
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the runtime stage runs as root (no USER, or USER root)")
    if not any(name == "HEALTHCHECK" and "/healthz" in args for name, args in final):
        problems.append("no HEALTHCHECK on /healthz")
    if ("EXPOSE", "8000") not in final:
        problems.append("no EXPOSE 8000")
    if not any(name == "RUN" and "npm ci" in args for stage in stages for name, args in stage):
        problems.append("hls.js is not installed with npm ci from the lock file")
    copies = [args for stage in stages for name, args in stage if name == "COPY"]
    if not any(
        re.fullmatch(r"--from=\S+ \S*/hls\.min\.js \S*/web/static/vendor/\S*", c) for c in copies
    ):
        problems.append("hls.min.js is not copied into web/static/vendor")
    return problems


def rtmp_conf_problems(text: str) -> list[str]:
    """The edge's generated config loads the module and calls every hook on the API."""
    problems = []
    if not re.search(r"^\s*load_module\s+\S*ngx_rtmp_module\.so;", text, re.M):
        problems.append("nginx.conf does not load the rtmp module")
    for hook in ("on_publish", "on_publish_done", "on_play"):
        pattern = rf"^\s*{hook}\s+http://api:8000/v1/live/hooks/{hook}\?token=\w+;"
        if not re.search(pattern, text, re.M):
            problems.append(f"no {hook} calling http://api:8000/v1/live/hooks/{hook}")
    return problems


def edge_config(doc: Doc, directory: Path) -> str:
    """nginx.conf as the compose file's rtmp service would generate it."""
    service = services_of(doc)["rtmp"]
    env = {k: str(v) for k, v in service["environment"].items()}
    values = {k.removeprefix("COURTSIDE_").lower(): v for k, v in env.items()}
    settings = Settings.model_validate(
        {
            "rtmp_listen": values["rtmp_listen"],
            "rtmp_hook_base_url": values["rtmp_hook_base_url"],
            "rtmp_play_networks": json.loads(values["rtmp_play_networks"]),
        }
    )
    return render_config(settings, directory)


# --- the deployment files pass every check -----------------------------------------------


@pytest.fixture(scope="module")
def doc() -> Doc:
    return load_compose()


def test_every_required_service_is_there(doc: Doc) -> None:
    assert missing_services(doc) == []


def test_project_image_services_run_real_cli_commands(doc: Doc) -> None:
    project = {name for name, s in services_of(doc).items() if uses_project_image(s)}
    assert {"migrate", "api", "worker-transcode", "worker-live", "beat"} <= project
    assert cli_problems(doc) == []


def test_api_listens_where_the_healthcheck_and_ports_look(doc: Doc) -> None:
    args = parse_cli(command_argv(services_of(doc)["api"]))
    assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 8000)  # noqa: S104 - inside the container
    assert args.workers >= 2


def test_every_courtside_variable_is_a_settings_field(doc: Doc) -> None:
    assert settings_var_problems(doc) == []


def test_shared_environment_builds_production_settings(
    doc: Doc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The anchor's values, with dummies for the secrets, are accepted by Settings itself."""
    env = _env_dict(doc["x-courtside-env"])
    assert env == _env_dict(services_of(doc)["api"]["environment"]), "api lost the shared env"
    for key in [k for k in os.environ if k.startswith("COURTSIDE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, ANY_VAR.sub(_dummy, value))
    settings = Settings()
    assert settings.environment == "production"
    assert settings.storage_backend == "s3"
    assert settings.db_url.startswith("postgresql+psycopg://courtside:")
    assert settings.s3_endpoint_url == "http://minio:9000"


def _dummy(match: re.Match[str]) -> str:
    return match["arg"] if match["op"] == ":-" else "0123456789abcdef" * 3


def test_workers_consume_every_queue_and_only_known_ones(doc: Doc) -> None:
    assert queue_problems(doc) == []


def test_dependencies_name_services_that_can_satisfy_them(doc: Doc) -> None:
    assert dependency_problems(doc) == []


def test_everything_that_uses_the_database_waits_for_migrate(doc: Doc) -> None:
    services = services_of(doc)
    for name, service in services.items():
        if uses_project_image(service) and name != "migrate":
            spec = (service.get("depends_on") or {}).get("migrate") or {}
            assert spec.get("condition") == "service_completed_successfully", name
    assert command_argv(services["migrate"]) == ["courtside", "migrate"]
    assert services["migrate"].get("restart") == "no"


def test_no_secret_is_written_in_the_compose_file(doc: Doc) -> None:
    assert secret_problems(doc) == []


def test_env_example_lists_every_required_variable(doc: Doc) -> None:
    assert env_example_problems(doc, ENV_EXAMPLE.read_text()) == []


def test_stateful_services_have_healthchecks(doc: Doc) -> None:
    services = services_of(doc)
    for name in ("postgres", "redis", "minio"):
        assert has_healthcheck(services[name]), name


def test_build_contexts_and_bind_mounts_exist(doc: Doc) -> None:
    assert bind_mount_problems(doc) == []


def test_dockerfile_builds_a_non_root_image_with_ffmpeg() -> None:
    assert DOCKERFILE.is_file()
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


def test_the_edge_runs_from_the_project_image_with_a_config_that_calls_the_api(
    doc: Doc, tmp_path: Path
) -> None:
    service = services_of(doc)["rtmp"]
    assert uses_project_image(service)
    assert command_argv(service) == ["courtside", "rtmp-edge"]
    assert rtmp_conf_problems(edge_config(doc, tmp_path)) == []
    assert re.search(r"apt-get install[^&;]*libnginx-mod-rtmp", DOCKERFILE.read_text())


@pytest.mark.skipif(
    shutil.which("nginx") is None or not RTMP_MODULE.exists(), reason="needs nginx-rtmp"
)
def test_the_edge_config_is_accepted_by_nginx(doc: Doc, tmp_path: Path) -> None:
    # nginx resolves hook hosts while loading; "api" exists only on the compose network.
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        edge_config(doc, tmp_path).replace("http://api:8000/", "http://127.0.0.1:8000/")
    )
    try:
        run_capture(["nginx", "-t", "-c", str(conf)], timeout_s=20)
    except FFmpegFailed as exc:  # the runner's error for any failed command, nginx included
        pytest.fail(f"nginx -t refuses the generated edge config: {exc}")


# --- and every check fails on a document that breaks it ----------------------------------


def _broken(doc: Doc, service: str, **changes: object) -> Doc:
    broken = copy.deepcopy(doc)
    services_of(broken)[service].update(changes)
    return broken


def test_checks_catch_unknown_cli_commands(doc: Doc) -> None:
    assert cli_problems(_broken(doc, "beat", command=["courtside", "scheduler"]))
    assert cli_problems(_broken(doc, "api", command="courtside serve --threads 2"))
    assert cli_problems(_broken(doc, "worker-live", command=["celery", "worker"]))


def test_checks_catch_unknown_settings(doc: Doc) -> None:
    broken = _broken(doc, "api", environment={"COURTSIDE_S3_ENDPOINT": "http://minio:9000"})
    assert settings_var_problems(broken)
    assert settings_var_problems(_broken(doc, "api", image="${COURTSIDE_IMAGE:-courtside}"))
    unmerged = copy.deepcopy(doc)
    unmerged["x-courtside-env"]["COURTSIDE_S3_ENDPOINT"] = "http://minio:9000"
    assert settings_var_problems(unmerged) == ["COURTSIDE_S3_ENDPOINT is not a Settings field"]


def test_checks_catch_queues_nobody_consumes_or_nobody_knows(doc: Doc) -> None:
    assert queue_problems(_broken(doc, "worker-live", command=["courtside", "beat"]))
    worker = ["courtside", "worker", "-Q", "ingest,transcode,default,thumbs"]
    assert queue_problems(_broken(doc, "worker-transcode", command=worker))


def test_checks_catch_bad_dependencies(doc: Doc) -> None:
    assert dependency_problems(_broken(doc, "api", depends_on=["postgresql"]))
    unhealthy = {"worker-live": {"condition": "service_healthy"}}
    assert dependency_problems(_broken(doc, "rtmp", depends_on=unhealthy))
    assert dependency_problems(_broken(doc, "api", depends_on={"redis": {"condition": "up"}}))


def test_checks_catch_literal_secrets(doc: Doc) -> None:
    literal = {"COURTSIDE_SECRET_KEY": "a-real-looking-secret-key-0123456789abcdef"}
    assert secret_problems(_broken(doc, "api", environment=literal))
    defaulted = {"POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:-postgres}"}
    assert secret_problems(_broken(doc, "postgres", environment=defaulted))
    url = {"COURTSIDE_DATABASE_URL": "postgresql+psycopg://courtside:hunter2@postgres/courtside"}
    assert secret_problems(_broken(doc, "api", environment=url))
    listed = _broken(doc, "minio", environment=["MINIO_ROOT_PASSWORD=minio123"])
    assert secret_problems(listed)
    anchored = copy.deepcopy(doc)
    anchored["x-courtside-env"]["COURTSIDE_S3_SECRET_ACCESS_KEY"] = "minio123"
    assert secret_problems(anchored)


def test_checks_catch_an_incomplete_env_example(doc: Doc) -> None:
    example = ENV_EXAMPLE.read_text()
    assert env_example_problems(doc, example.replace("POSTGRES_PASSWORD=", "PG_PASSWORD="))
    assert env_example_problems(doc, example.replace("POSTGRES_PASSWORD=", "POSTGRES_PASSWORD=x"))


def test_checks_catch_missing_files_and_healthchecks(doc: Doc) -> None:
    assert bind_mount_problems(_broken(doc, "minio-init", volumes=["./deploy/nope.sh:/x:ro"]))
    assert bind_mount_problems(_broken(doc, "rtmp", build={"context": "deploy"}))
    assert not has_healthcheck(services_of(doc)["beat"])
    without_beat = copy.deepcopy(doc)
    del services_of(without_beat)["beat"]
    assert missing_services(without_beat) == ["no service 'beat'"]


def test_checks_catch_a_bad_dockerfile() -> None:
    good = DOCKERFILE.read_text()
    assert dockerfile_problems(good.replace(" ffmpeg", " ffmpeg-doc"))
    assert dockerfile_problems(good.replace("USER courtside:courtside", "USER root"))
    assert dockerfile_problems(good.replace("/healthz", "/readyz"))
    assert dockerfile_problems(good.replace("EXPOSE 8000", "EXPOSE 8080"))
    assert dockerfile_problems(good.replace("npm ci", "npm install"))
    assert dockerfile_problems(good + "\nFROM python:3.12-slim\nUSER app\n")


def test_checks_catch_a_bad_rtmp_conf(doc: Doc, tmp_path: Path) -> None:
    good = edge_config(doc, tmp_path)
    assert rtmp_conf_problems(good.replace("load_module", "# load_module"))
    assert rtmp_conf_problems(good.replace("on_publish http", "on_play http"))
    assert rtmp_conf_problems(good.replace("api:8000", "localhost:8000"))
