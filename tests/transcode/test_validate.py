"""Which sources we refuse, with which code, and what the partner is told."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from core.settings import Settings
from transcode.commands import FORMAT_WHITELIST
from transcode.errors import REFUSAL_REASONS, UnsupportedInput
from transcode.probe import ProbeResult
from transcode.validate import (
    ACCEPTED_CONTAINERS,
    InputLimits,
    check_file,
    check_source,
    container_of,
    duration_words,
    references_external,
    refusal_for_unreadable,
    size_words,
)

README = Path(__file__).resolve().parents[2] / "README.md"
GOOD = ProbeResult(
    container="mov,mp4,m4a,3gp,3g2,mj2",
    duration_s=12.0,
    width=1920,
    height=1080,
    fps=29.97,
    video_codec="h264",
    pix_fmt="yuv420p",
    has_audio=True,
    size_bytes=5_000_000,
)
LIMITS = InputLimits()


def refusal(probe: ProbeResult, limits: InputLimits = LIMITS) -> UnsupportedInput:
    with pytest.raises(UnsupportedInput) as caught:
        check_source(probe, limits)
    assert caught.value.code in REFUSAL_REASONS
    assert caught.value.message.endswith(".")  # whole sentences for the partner
    return caught.value


def test_a_plain_hd_clip_passes() -> None:
    check_source(GOOD, LIMITS)  # no refusal is the assertion
    check_source(replace(GOOD, fps=120000 / 1001, width=4096, height=2160), LIMITS)
    check_source(replace(GOOD, container="mpegts", fps=None, width=16, height=16), LIMITS)


@pytest.mark.parametrize(
    ("changes", "code", "words"),
    [
        ({"duration_s": 5 * 3600 + 12 * 60}, "too_long", "5 h 12 min long; the limit is 4 h"),
        ({"width": 7680, "height": 4320}, "dimensions_too_large", "7680x4320"),
        ({"width": 64, "height": 8192}, "dimensions_too_large", "at most 4096"),
        ({"width": 320, "height": 8}, "dimensions_too_small", "at least 16"),
        ({"fps": 240.0}, "frame_rate_too_high", "240 frames per second; the limit is 120"),
        ({"size_bytes": 3_200_000_000}, "too_large", "3.2 GB; the limit is 2.1 GB"),
        ({"video_codec": "theora"}, "unsupported_codec", "encoded as theora"),
        ({"video_codec": ""}, "unsupported_codec", "an unknown codec"),
        ({"container": "ogg"}, "unsupported_container", "ogg format"),
        ({"container": ""}, "unsupported_container", "unknown format"),
    ],
)
def test_refusals_say_what_is_wrong_and_what_to_do(
    changes: dict[str, object], code: str, words: str
) -> None:
    error = refusal(replace(GOOD, **changes))  # type: ignore[arg-type]  # fields vary by case

    assert error.code == code
    assert words in error.message
    assert re.search(r"upload|export", error.message, re.IGNORECASE)


def test_limits_come_from_settings() -> None:
    settings = Settings(
        max_duration_s=600, max_dimension_px=1920, max_fps=60.0, max_upload_bytes=10**8
    )

    limits = InputLimits.from_settings(settings)

    assert limits == InputLimits(
        max_duration_s=600.0, max_long_side=1920, max_fps=60.0, max_bytes=10**8
    )
    assert refusal(replace(GOOD, duration_s=601), limits).code == "too_long"
    assert refusal(replace(GOOD, width=2560, height=1440), limits).code == "dimensions_too_large"
    assert refusal(replace(GOOD, fps=59.94 * 2), limits).code == "frame_rate_too_high"
    check_source(replace(GOOD, fps=60000 / 1001), limits)


def test_default_limits_match_the_settings_defaults() -> None:
    settings = Settings()

    assert InputLimits.from_settings(settings) == InputLimits()


def test_accepted_containers_are_exactly_what_ffprobe_may_open() -> None:
    assert set(FORMAT_WHITELIST.split(",")) == ACCEPTED_CONTAINERS
    assert not {"hls", "dash", "concat", "image2", "sdp", "lavfi"} & ACCEPTED_CONTAINERS


@pytest.mark.parametrize(
    "head",
    [
        b"#EXTM3U\n#EXTINF:2,\n/etc/passwd\n",
        b"\xef\xbb\xbf#EXTM3U\nhttp://127.0.0.1/x.ts\n",
        b"  #EXT-X-VERSION:3\n",
        b"ffconcat version 1.0\nfile 'a.mp4'\n",
        b"file '/etc/passwd'\n",
        b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">',
        b"v=0\no=- 0 0 IN IP4 127.0.0.1\nm=video 5004 RTP/AVP 96\n",
        b"[playlist]\nFile1=http://x/\n",
        b"goal.mp4\nsave.mp4\n",
        b"see file:/etc/passwd\n",
        b"concat:a.mp4|b.mp4",
        b"play ../other/upload\n",
    ],
)
def test_playlists_lists_and_text_naming_files_reference_something(head: bytes) -> None:
    assert references_external(head)


@pytest.mark.parametrize(
    "head",
    [
        b"Final score 2-1, highlights to follow.\n",
        b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41 file http://x/",
        b"\x1a\x45\xdf\xa3\x00\x00#EXTM3U",
        # A DASH-packaged fMP4: its ftyp brand and event boxes name DASH, but it is media.
        b"\x00\x00\x00\x18ftypdash\x00\x00\x00\x00iso6dash\x00\x00\x00\x3cemsg"
        b"\x00\x00\x00\x00urn:mpeg:dash:event:2012\x00",
    ],
)
def test_media_and_plain_notes_do_not(head: bytes) -> None:
    # Binary media may contain any bytes; only a playlist header at the start counts there.
    assert not references_external(head)


@pytest.mark.parametrize(
    ("head", "code", "container"),
    [
        (b"\x00\x00\x00\x20ftypisom" + b"\x00" * 64, "corrupt", "MP4/MOV"),
        (b"\x1a\x45\xdf\xa3" + b"\x00" * 64, "corrupt", "Matroska/WebM"),
        ((b"G" + b"\x00" * 187) * 2, "corrupt", "MPEG-TS"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "corrupt", "AVI"),
        (b"OggS\x00\x02" + b"\x00" * 64, "unsupported_container", "Ogg"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "unsupported_container", "WAV"),
        (b"\x00\x00\x01\xba" + b"\x00" * 64, "unsupported_container", "MPEG program stream"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_media", ""),
        (b"\x00\x01\x02\x03", "not_media", ""),
    ],
)
def test_unreadable_files_are_judged_by_their_first_bytes(
    head: bytes, code: str, container: str
) -> None:
    error = refusal_for_unreadable(head)

    assert (error.code, container_of(head)) == (code, container)
    assert container in error.message


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("source", b"", "empty_file"),
        ("frame%03d.mp4", b"\x00\x00\x00\x20ftypisom", "references_external"),
        ("clip*.mp4", b"\x00\x00\x00\x20ftypisom", "references_external"),
        ("source", b"#EXTM3U\n", "references_external"),
        ("source", b"just some words\n", "not_media"),
    ],
)
def test_check_file_refuses_before_ffprobe(
    tmp_path: Path, name: str, content: bytes, code: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(UnsupportedInput) as caught:
        check_file(path, LIMITS)

    assert caught.value.code == code


def test_check_file_refuses_too_many_bytes_and_returns_the_head(tmp_path: Path) -> None:
    path = tmp_path / "source"
    path.write_bytes(b"\x00\x00\x00\x20ftypisom" + b"\x00" * 100_000)

    assert check_file(path, LIMITS)[4:8] == b"ftyp"
    with pytest.raises(UnsupportedInput, match="100 kB; the limit is 1 kB") as caught:
        check_file(path, InputLimits(max_bytes=1000))
    assert caught.value.code == "too_large"


def test_check_file_wants_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_file(tmp_path, LIMITS)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(45, "45 s"), (200, "3 min 20 s"), (600, "10 min"), (4 * 3600, "4 h"), (18720, "5 h 12 min")],
)
def test_durations_read_as_people_say_them(seconds: float, words: str) -> None:
    assert duration_words(seconds) == words


def test_sizes_read_as_file_managers_show_them() -> None:
    assert [size_words(n) for n in (999, 1000, 512_000_000, 3_210_000_000)] == [
        "999 bytes",
        "1 kB",
        "512 MB",
        "3.2 GB",
    ]


def test_the_readme_lists_every_refusal_code() -> None:
    section = README.read_text().split("### Why a clip is refused", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE)

    assert sorted(documented) == sorted(REFUSAL_REASONS)
