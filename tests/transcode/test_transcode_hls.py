"""End to end with real ffmpeg: tiny clips in, a playable HLS ladder out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.media import make_clip
from transcode.commands import FORMAT_WHITELIST
from transcode.errors import UnsupportedInput
from transcode.hls import HlsOutput, transcode_to_hls
from transcode.ladder import Rung
from transcode.playlists import parse_master, segment_durations
from transcode.runner import run_capture

TIMEOUT_S = 60.0


def ffprobe_output(master: Path) -> list[dict[str, Any]]:
    """The streams ffprobe finds through the master playlist, as a player would walk it."""
    argv = ["ffprobe", "-v", "error", "-protocol_whitelist", "file"]
    # The output is ours, so here the hls demuxer (and the mp4 one for its segments) may run.
    argv += ["-format_whitelist", f"hls,{FORMAT_WHITELIST}", "-print_format", "json"]
    text = run_capture([*argv, "-show_streams", str(master)], timeout_s=TIMEOUT_S)
    streams: list[dict[str, Any]] = json.loads(text)["streams"]
    return streams


@pytest.fixture(scope="module")
def with_audio(
    clip_with_audio: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, HlsOutput, list[float]]:
    out_dir = tmp_path_factory.mktemp("hls-audio") / "out"
    progress: list[float] = []
    output = transcode_to_hls(
        clip_with_audio, out_dir, timeout_s=TIMEOUT_S, on_progress=progress.append
    )
    return out_dir, output, progress


@pytest.fixture(scope="module")
def without_audio(
    clip_without_audio: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, HlsOutput]:
    out_dir = tmp_path_factory.mktemp("hls-silent")
    return out_dir, transcode_to_hls(clip_without_audio, out_dir, timeout_s=TIMEOUT_S)


def test_a_360p_clip_gets_only_the_360p_rung(
    with_audio: tuple[Path, HlsOutput, list[float]],
) -> None:
    out_dir, output, _ = with_audio

    (rendition,) = output.renditions
    assert (rendition.name, rendition.width, rendition.height) == ("360p", 640, 360)
    assert rendition.codecs.startswith("avc1.64")  # High profile
    assert rendition.codecs.endswith(",mp4a.40.2")
    assert rendition.bandwidth >= rendition.average_bandwidth > 0
    assert (out_dir / rendition.playlist).is_file()
    assert output.duration_s == pytest.approx(2.0, abs=0.1)


def test_files_are_listed_for_an_atomic_publish(
    with_audio: tuple[Path, HlsOutput, list[float]],
) -> None:
    out_dir, output, _ = with_audio
    on_disk = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()}

    assert set(output.files) == on_disk
    assert output.files[-1] == output.master == "master.m3u8"
    first_playlist = min(i for i, f in enumerate(output.files) if f.endswith(".m3u8"))
    assert all(f.endswith((".m4s", ".mp4")) for f in output.files[:first_playlist])
    assert output.audio_playlist in output.files


def test_master_playlist_is_complete_and_shares_one_audio_group(
    with_audio: tuple[Path, HlsOutput, list[float]],
) -> None:
    out_dir, output, _ = with_audio
    text = (out_dir / output.master).read_text()
    (variant,) = parse_master(text)

    assert '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"' in text
    assert f'URI="{output.audio_playlist}"' in text
    for attribute in ("BANDWIDTH", "AVERAGE-BANDWIDTH", "CODECS", "RESOLUTION", "FRAME-RATE"):
        assert attribute in variant.attributes
    assert variant.attributes["RESOLUTION"] == "640x360"
    assert variant.attributes["FRAME-RATE"] == "30.000"


def test_the_master_plays_through_ffprobe(with_audio: tuple[Path, HlsOutput, list[float]]) -> None:
    out_dir, output, _ = with_audio

    streams = ffprobe_output(out_dir / output.master)

    video = [s for s in streams if s["codec_type"] == "video"]
    assert {(s["codec_name"], s["profile"], s["height"]) for s in video} == {("h264", "High", 360)}
    assert {s["codec_name"] for s in streams if s["codec_type"] == "audio"} == {"aac"}


def test_progress_reaches_one(with_audio: tuple[Path, HlsOutput, list[float]]) -> None:
    _, _, progress = with_audio

    assert progress[-1] == 1.0
    assert progress == sorted(progress)


def test_a_silent_clip_gets_no_audio_rendition(without_audio: tuple[Path, HlsOutput]) -> None:
    out_dir, output = without_audio
    text = (out_dir / output.master).read_text()

    assert output.audio_playlist is None
    assert "EXT-X-MEDIA" not in text
    assert "mp4a" not in text
    assert [r.playlist for r in output.renditions] == ["v0/index.m3u8"]
    assert output.files[-1] == "master.m3u8"
    streams = ffprobe_output(out_dir / output.master)
    assert [s["codec_type"] for s in streams] == ["video"]


def test_rungs_are_keyframe_aligned(media_dir: Path, tmp_path: Path) -> None:
    # Small rungs keep it fast; 5 s makes two 4 s-target segments per rung.
    source = make_clip(media_dir, seconds=5, width=640, height=360, fps=25, audio=True)
    ladder = (Rung("240p", 240, 400, 500), Rung("120p", 120, 120, 150))

    output = transcode_to_hls(source, tmp_path / "out", timeout_s=TIMEOUT_S, ladder=ladder)

    assert [(r.name, r.width, r.height) for r in output.renditions] == [
        ("240p", 426, 240),
        ("120p", 214, 120),
    ]
    durations = [
        [d for d, _ in segment_durations((tmp_path / "out" / r.playlist).read_text())]
        for r in output.renditions
    ]
    assert durations[0] == durations[1]
    assert len(durations[0]) == 2
    assert durations[0][0] == pytest.approx(4.0)
    assert output.renditions[0].bandwidth > output.renditions[1].bandwidth


def test_a_portrait_phone_clip_stays_upright(rotated_clip: Path, tmp_path: Path) -> None:
    output = transcode_to_hls(rotated_clip, tmp_path / "out", timeout_s=TIMEOUT_S)

    assert [(r.width, r.height) for r in output.renditions] == [(360, 640)]
    streams = ffprobe_output(tmp_path / "out" / output.master)
    assert [(s["width"], s["height"]) for s in streams] == [(360, 640)]


def test_refused_input_writes_nothing(tmp_path: Path) -> None:
    text_file = tmp_path / "upload.mp4"
    text_file.write_text("not a video\n")
    out_dir = tmp_path / "out"

    with pytest.raises(UnsupportedInput) as caught:
        transcode_to_hls(text_file, out_dir, timeout_s=TIMEOUT_S)

    assert caught.value.code == "not_media"
    assert list(out_dir.iterdir()) == []


def test_a_used_output_folder_is_refused(clip_with_audio: Path, tmp_path: Path) -> None:
    (tmp_path / "stale.m4s").write_bytes(b"old")

    with pytest.raises(ValueError, match="not empty"):
        transcode_to_hls(clip_with_audio, tmp_path, timeout_s=TIMEOUT_S)
