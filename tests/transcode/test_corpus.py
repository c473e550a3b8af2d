"""The corpus of odd and hostile uploads: each is accepted with the right facts or refused with
the right code, and nothing a playlist or list points at is ever opened.

The referenced "file" is a FIFO: opening it for reading blocks until a writer comes, so a
probe or encode that followed a reference would hang into its timeout instead of failing
fast. The referenced URL is a loopback server that records every request it gets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scripts.make_corpus import CORPUS, Entry, Targets, make_corpus
from transcode.commands import FORMAT_WHITELIST, PROTOCOL_WHITELIST, hls_command, probe_command
from transcode.errors import REFUSAL_REASONS, FFmpegFailed, FFmpegTimeout, UnsupportedInput
from transcode.hls import transcode_to_hls
from transcode.ladder import renditions_for
from transcode.probe import ProbeResult, probe
from transcode.runner import run_capture, run_ffmpeg

TIMEOUT_S = 20.0
# Long enough for ffprobe or ffmpeg to fail on its own on a busy machine, short enough that
# a process stuck opening the FIFO is caught by the timeout instead.
FENCE_TIMEOUT_S = 10.0
ACCEPTED = [entry for entry in CORPUS if entry.refused is None]
REFUSED = [entry for entry in CORPUS if entry.refused is not None]
REFERENCES = [entry for entry in CORPUS if entry.references]


@dataclass
class Recorder:
    """What the loopback server was asked for."""

    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def url_server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            recorder.requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            del format, args  # quiet: the recorder is the log

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/segment.ts", recorder
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="session")
def corpus(
    tmp_path_factory: pytest.TempPathFactory, url_server: tuple[str, Recorder]
) -> dict[str, Path]:
    """Every corpus file, made once; references point at a FIFO beside them and the server."""
    folder = tmp_path_factory.mktemp("corpus")
    trap = folder / "private.mp4"
    os.mkfifo(trap)
    return make_corpus(folder, targets=Targets(local_file=trap, url=url_server[0]))


@pytest.fixture
def no_requests(url_server: tuple[str, Recorder]) -> Iterator[None]:
    """Fails the test if anything asked the loopback server for anything while it ran."""
    recorder = url_server[1]
    before = list(recorder.requests)
    yield
    assert recorder.requests == before == []


def assert_refused_at_open(error: FFmpegFailed, entry: Entry) -> None:
    """ffmpeg failed on the upload itself, for the fence's reason, and did not hang."""
    assert not isinstance(error, FFmpegTimeout)  # it did not block on the FIFO
    assert f"{entry.name}: " in error.stderr_tail
    assert "not on whitelist" in error.stderr_tail or "Invalid data found" in error.stderr_tail


def ids(entries: list[Entry]) -> list[str]:
    return [entry.name for entry in entries]


def test_the_corpus_covers_every_refusal_code() -> None:
    assert {entry.refused for entry in REFUSED} == set(REFUSAL_REASONS)
    assert len({entry.name for entry in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("entry", ACCEPTED, ids=ids(ACCEPTED))
def test_accepted_sources_report_their_facts(corpus: dict[str, Path], entry: Entry) -> None:
    result = probe(corpus[entry.name], timeout_s=TIMEOUT_S)

    assert {key: getattr(result, key) for key in entry.facts} == dict(entry.facts)
    assert result.size_bytes == corpus[entry.name].stat().st_size


@pytest.mark.parametrize("entry", REFUSED, ids=ids(REFUSED))
@pytest.mark.usefixtures("no_requests")
def test_refused_sources_get_their_code_and_a_sentence(
    corpus: dict[str, Path], entry: Entry
) -> None:
    with pytest.raises(UnsupportedInput) as caught:
        probe(corpus[entry.name], timeout_s=TIMEOUT_S)

    assert caught.value.code == entry.refused
    assert caught.value.message.endswith(".")
    assert str(corpus[entry.name].parent) not in caught.value.message  # no server paths


@pytest.mark.parametrize("entry", REFUSED, ids=ids(REFUSED))
@pytest.mark.usefixtures("no_requests")
def test_transcode_to_hls_refuses_with_the_same_code_before_encoding(
    corpus: dict[str, Path], entry: Entry, tmp_path: Path
) -> None:
    out_dir = tmp_path / "hls"

    with pytest.raises(UnsupportedInput) as caught:
        transcode_to_hls(corpus[entry.name], out_dir, timeout_s=TIMEOUT_S)

    assert caught.value.code == entry.refused
    assert not any(out_dir.rglob("*"))  # refused before ffmpeg wrote anything


@pytest.mark.parametrize("entry", REFERENCES, ids=ids(REFERENCES))
@pytest.mark.usefixtures("no_requests")
def test_fenced_ffprobe_alone_never_follows_references(
    corpus: dict[str, Path], entry: Entry
) -> None:
    # The second fence, as if the sniff were fooled: ffprobe with our whitelists fails fast.
    command = probe_command("ffprobe", corpus[entry.name])

    with pytest.raises(FFmpegFailed) as caught:
        run_capture(command, timeout_s=FENCE_TIMEOUT_S)

    assert_refused_at_open(caught.value, entry)


@pytest.mark.parametrize("entry", REFERENCES, ids=ids(REFERENCES))
@pytest.mark.usefixtures("no_requests")
def test_the_encode_command_never_follows_references(
    corpus: dict[str, Path], entry: Entry, tmp_path: Path
) -> None:
    info = ProbeResult(
        container="mpegts",
        duration_s=2.0,
        width=320,
        height=240,
        fps=30.0,
        video_codec="h264",
        pix_fmt="yuv420p",
        has_audio=False,
        size_bytes=1,
    )
    renditions = renditions_for(info)  # what a real source this size would get
    argv = hls_command("ffmpeg", corpus[entry.name], tmp_path, renditions, info=info)
    source_at = argv.index("-i")
    assert argv[source_at - 4 : source_at] in (
        ["-protocol_whitelist", PROTOCOL_WHITELIST, "-format_whitelist", FORMAT_WHITELIST],
        ["-format_whitelist", FORMAT_WHITELIST, "-protocol_whitelist", PROTOCOL_WHITELIST],
    )

    with pytest.raises(FFmpegFailed) as caught:
        run_ffmpeg(argv, timeout_s=FENCE_TIMEOUT_S)

    assert_refused_at_open(caught.value, entry)


def test_the_fifo_trap_would_catch_an_unfenced_probe(corpus: dict[str, Path]) -> None:
    # Proof the trap works: plain ffprobe follows the concat list, opens the FIFO and hangs.
    unfenced = ["ffprobe", "-v", "error", "-show_format", str(corpus["ffconcat.mp4"])]

    with pytest.raises(FFmpegTimeout):
        run_capture(unfenced, timeout_s=2.0)
