"""Poster and storyboard: the plan and argv without ffmpeg, then real files from tiny clips."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import pytest

from tests.media import make_clip
from transcode.commands import FORMAT_WHITELIST
from transcode.probe import ProbeResult, probe
from transcode.runner import run_capture, run_ffmpeg
from transcode.thumbnails import (
    StoryboardPlan,
    Thumbnails,
    make_thumbnails,
    plan_storyboard,
    poster_command,
    poster_size,
    storyboard_command,
    storyboard_vtt,
)

TIMEOUT_S = 60.0
CUE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})$")
FRAGMENT = re.compile(r"^(storyboard_\d+\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)$")
SOURCE = ProbeResult(
    container="mov,mp4,m4a,3gp,3g2,mj2",
    duration_s=600.0,
    width=1920,
    height=1080,
    fps=50.0,
    video_codec="h264",
    pix_fmt="yuv420p",
    has_audio=True,
    size_bytes=1,
)


def seconds(groups: tuple[str, ...]) -> float:
    hours, minutes, secs, millis = (int(g) for g in groups)
    return hours * 3600 + minutes * 60 + secs + millis / 1000


def parse_vtt(text: str) -> list[tuple[float, float, str, int, int, int, int]]:
    """(start, end, sheet, x, y, w, h) per cue; fails on anything that is not one."""
    blocks = text.strip().split("\n\n")
    assert blocks[0] == "WEBVTT"
    cues = []
    for block in blocks[1:]:
        timing, target = block.split("\n")
        times, fragment = CUE.match(timing), FRAGMENT.match(target)
        assert times is not None, timing
        assert fragment is not None, target
        x, y, w, h = (int(v) for v in fragment.groups()[1:])
        groups = times.groups()
        cues.append((seconds(groups[:4]), seconds(groups[4:]), fragment[1], x, y, w, h))
    return cues


def image_size(path: Path) -> tuple[str, int, int]:
    argv = ["ffprobe", "-v", "error", "-protocol_whitelist", "file", "-print_format", "json"]
    text = run_capture([*argv, "-show_streams", str(path)], timeout_s=TIMEOUT_S)
    (stream,) = json.loads(text)["streams"]
    return stream["codec_name"], stream["width"], stream["height"]


def brightness(image: Path, crop: tuple[int, int, int, int], tmp_path: Path) -> int:
    """Mean luma (0-255) of one rectangle of an image."""
    x, y, w, h = crop
    raw = tmp_path / "pixel.gray"
    run_ffmpeg(
        [
            *("ffmpeg", "-v", "error", "-y", "-i", str(image)),
            *("-vf", f"crop={w}:{h}:{x}:{y},scale=1:1", "-f", "rawvideo", "-pix_fmt", "gray"),
            str(raw),
        ],
        timeout_s=TIMEOUT_S,
    )
    return raw.read_bytes()[0]


def check_storyboard(out_dir: Path, made: Thumbnails, duration_s: float) -> None:
    """Cues run end to end over the whole duration; every fragment lies inside its sheet."""
    cues = parse_vtt((out_dir / made.vtt).read_text())
    assert cues[0][0] == 0.0
    assert cues[-1][1] == pytest.approx(duration_s, abs=0.001)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cues))
    assert all(start < end for start, end, *_ in cues)
    sizes = {sheet: image_size(out_dir / sheet) for sheet in made.sheets}
    assert {codec for codec, _, _ in sizes.values()} == {"mjpeg"}
    for _, _, sheet, x, y, w, h in cues:
        _, width, height = sizes[sheet]
        assert w == 160
        assert x + w <= width
        assert y + h <= height


# (duration, requested interval) → (interval, tiles, columns, rows, sheets)
@pytest.mark.parametrize(
    ("duration", "requested", "expected"),
    [
        (2.0, None, (1.0, 2, 2, 1, 1)),
        (0.4, None, (1.0, 1, 1, 1, 1)),
        (60.0, None, (1.0, 60, 10, 6, 1)),
        (100.0, None, (1.0, 100, 10, 10, 1)),
        (250.0, None, (3.0, 83, 10, 9, 1)),
        (4 * 3600.0, None, (144.0, 100, 10, 10, 1)),
        (150.0, 1.0, (1.0, 150, 10, 10, 2)),
        (300.0, 0.5, (1.5, 200, 10, 10, 2)),  # at most 200 tiles, at least 1 s
        (30.0, 0.2, (1.0, 30, 10, 3, 1)),
    ],
)
def test_the_storyboard_plan(
    duration: float, requested: float | None, expected: tuple[float, int, int, int, int]
) -> None:
    plan = plan_storyboard(duration, 1920, 1080, requested)

    assert (plan.interval_s, plan.tiles, plan.columns, plan.rows, len(plan.sheets)) == expected
    assert (plan.tile_width, plan.tile_height) == (160, 90)


@pytest.mark.parametrize(
    ("duration", "interval"), [(0.0, None), (10.0, math.nan), (10.0, math.inf)]
)
def test_impossible_plans_are_refused(duration: float, interval: float | None) -> None:
    with pytest.raises(ValueError, match="must be"):
        plan_storyboard(duration, 1920, 1080, interval)


def test_tiles_keep_the_display_aspect() -> None:
    assert plan_storyboard(10, 1080, 1920).tile_height == 284
    assert plan_storyboard(10, 1440, 1080).tile_height == 120


def test_tiles_fill_sheets_row_by_row_then_the_next_sheet() -> None:
    plan = StoryboardPlan(1.0, 150, 160, 90, 10, 10)

    assert plan.position(0) == ("storyboard_1.jpg", 0, 0)
    assert plan.position(11) == ("storyboard_1.jpg", 160, 90)
    assert plan.position(99) == ("storyboard_1.jpg", 1440, 810)
    assert plan.position(100) == ("storyboard_2.jpg", 0, 0)
    assert plan.sheets == ["storyboard_1.jpg", "storyboard_2.jpg"]


def test_the_vtt_covers_the_duration_with_contiguous_cues() -> None:
    plan = plan_storyboard(125.4, 1280, 720, 1.0)

    cues = parse_vtt(storyboard_vtt(plan, 125.4))

    assert len(cues) == plan.tiles == 125
    assert (cues[0][0], cues[-1][1]) == (0.0, 125.4)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cues))
    assert cues[100][2:4] == ("storyboard_2.jpg", 0)
    assert "00:02:04.000 --> 00:02:05.400" in storyboard_vtt(plan, 125.4)


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1920, 1080, (1280, 720)),
        (640, 360, (640, 360)),
        (1080, 1920, (1080, 1920)),
        (321, 241, (320, 240)),
    ],
)
def test_the_poster_is_at_most_1280_wide_and_even(
    width: int, height: int, expected: tuple[int, int]
) -> None:
    assert poster_size(width, height) == expected


def test_the_poster_command_seeks_15_percent_in_and_picks_a_typical_frame() -> None:
    argv = poster_command("ffmpeg", Path("/in/x"), Path("/out/poster.jpg"), SOURCE)

    assert argv[argv.index("-ss") + 1] == "90.000"
    assert argv.index("-ss") < argv.index("-i")
    graph = argv[argv.index("-filter_complex") + 1]
    assert "scale=1280:720" in graph
    assert "thumbnail=n=10" in graph
    assert argv[argv.index("-vframes") + 1] == "1"
    assert argv[argv.index("-format_whitelist") + 1] == FORMAT_WHITELIST
    assert argv[argv.index("-protocol_whitelist") + 1] == "file"


def test_long_sources_decode_keyframes_only() -> None:
    long_plan = plan_storyboard(SOURCE.duration_s, 1920, 1080)  # 6 s tiles
    short_plan = plan_storyboard(30.0, 1920, 1080)  # 1 s tiles

    long_argv = storyboard_command("ffmpeg", Path("/in/x"), Path("/out"), long_plan)
    short_argv = storyboard_command("ffmpeg", Path("/in/x"), Path("/out"), short_plan)

    assert long_argv[long_argv.index("-skip_frame") + 1] == "nokey"
    assert long_argv.index("-skip_frame") < long_argv.index("-i")
    assert "-skip_frame" not in short_argv
    graph = long_argv[long_argv.index("-filter_complex") + 1]
    assert "fps=fps=1/6" in graph
    assert "trim=end_frame=100" in graph
    assert "tile=10x10" in graph
    assert "tpad=stop_duration=600:stop_mode=clone" in graph
    assert "/out/storyboard_%d.jpg" in long_argv


def test_thumbnails_of_a_short_clip(clip_with_audio: Path, tmp_path: Path) -> None:
    info = probe(clip_with_audio, timeout_s=TIMEOUT_S)

    made = make_thumbnails(
        clip_with_audio, tmp_path, info, ffmpeg_bin="ffmpeg", timeout_s=TIMEOUT_S
    )

    assert made.files == ["storyboard_1.jpg", "poster.jpg", "storyboard.vtt"]
    assert {p.name for p in tmp_path.iterdir()} == set(made.files)
    assert image_size(tmp_path / made.poster) == ("mjpeg", 640, 360)
    assert image_size(tmp_path / "storyboard_1.jpg") == ("mjpeg", 320, 90)  # 2 tiles, 1 s each
    check_storyboard(tmp_path, made, info.duration_s)
    assert brightness(tmp_path / made.poster, (0, 0, 640, 360), tmp_path) > 30  # not black


def test_the_poster_of_real_footage_is_1280_wide(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[3] / "shared" / "media" / "bigbuckbunny.mp4"
    info = probe(source, timeout_s=TIMEOUT_S)

    made = make_thumbnails(source, tmp_path, info, ffmpeg_bin="ffmpeg", timeout_s=TIMEOUT_S)

    assert image_size(tmp_path / made.poster) == ("mjpeg", 1280, 720)
    assert len(parse_vtt((tmp_path / made.vtt).read_text())) == 5  # 5.3 s at 1 s a tile
    check_storyboard(tmp_path, made, info.duration_s)


def test_a_portrait_clip_gets_upright_thumbnails(rotated_clip: Path, tmp_path: Path) -> None:
    info = probe(rotated_clip, timeout_s=TIMEOUT_S)

    made = make_thumbnails(rotated_clip, tmp_path, info, ffmpeg_bin="ffmpeg", timeout_s=TIMEOUT_S)

    assert image_size(tmp_path / made.poster) == ("mjpeg", 360, 640)
    assert image_size(tmp_path / made.sheets[0])[1:] == (160, 284)
    check_storyboard(tmp_path, made, info.duration_s)


@pytest.fixture(scope="module")
def two_minutes(media_dir: Path) -> Path:
    """120 s at 1 fps and 64x36: long enough for two sheets, one keyframe (x264's GOP)."""
    return make_clip(media_dir, seconds=120, width=64, height=36, fps=1, audio=False)


def test_a_long_clip_fills_two_sheets(two_minutes: Path, tmp_path: Path) -> None:
    info = probe(two_minutes, timeout_s=TIMEOUT_S)

    made = make_thumbnails(
        two_minutes, tmp_path, info, ffmpeg_bin="ffmpeg", timeout_s=TIMEOUT_S, interval_s=1
    )

    assert made.sheets == ["storyboard_1.jpg", "storyboard_2.jpg"]
    assert image_size(tmp_path / "storyboard_2.jpg") == ("mjpeg", 1600, 900)
    check_storyboard(tmp_path, made, info.duration_s)
    cues = parse_vtt((tmp_path / made.vtt).read_text())
    assert len(cues) == 120
    _, _, sheet, x, y, w, h = cues[-1]
    assert (sheet, x, y) == ("storyboard_2.jpg", 1440, 90)
    assert brightness(tmp_path / sheet, (x, y, w, h), tmp_path) > 30  # a picture, not padding


def test_keyframes_only_still_fills_every_tile(two_minutes: Path, tmp_path: Path) -> None:
    # One keyframe at 0 s: decoding keyframes only gives one picture, held for every tile.
    info = probe(two_minutes, timeout_s=TIMEOUT_S)

    made = make_thumbnails(
        two_minutes, tmp_path, info, ffmpeg_bin="ffmpeg", timeout_s=TIMEOUT_S, interval_s=5
    )

    cues = parse_vtt((tmp_path / made.vtt).read_text())
    assert len(cues) == 24
    _, _, sheet, x, y, w, h = cues[-1]
    assert brightness(tmp_path / sheet, (x, y, w, h), tmp_path) > 30
    check_storyboard(tmp_path, made, info.duration_s)


def test_a_short_gop_known_from_the_keyframe_scan_lets_the_storyboard_decode_keyframes_only() -> (
    None
):
    plan = plan_storyboard(60.0, 1920, 1080, gop_s=2.0)  # an editor's export: 2 s GOP
    assert plan.keyframes_only
    assert plan.interval_s == 2.0  # one tile per keyframe, not 1 s tiles repeating pictures
    assert plan.tiles == 30
    long_gop = plan_storyboard(60.0, 1920, 1080, gop_s=8.0)  # a tile could be 8 s early
    assert not long_gop.keyframes_only
    assert long_gop.interval_s == 1.0
