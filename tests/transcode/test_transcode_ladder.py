"""Choosing rungs, frame sizes, frame rates and bitrates for a source (pure functions)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from transcode.ladder import (
    DEFAULT_LADDER,
    MIN_BPP,
    RUNG_144P,
    Rung,
    default_ladder,
    exact_rate,
    frame_size,
    ladder_for,
    output_rate,
    renditions_for,
    snap,
    source_rate,
    video_ceiling_kbps,
)
from transcode.probe import ProbeResult

NTSC_30 = Fraction(30000, 1001)
NTSC_60 = Fraction(60000, 1001)


def source(
    width: int,
    height: int,
    *,
    rotation: int = 0,
    sar: float = 1.0,
    fps: float | None = 30.0,
    avg_fps: float | None = None,
    vfr: bool = False,
    video_bitrate: int | None = None,
) -> ProbeResult:
    return ProbeResult(
        container="mov,mp4,m4a,3gp,3g2,mj2",
        duration_s=10.0,
        width=width,
        height=height,
        fps=fps,
        video_codec="h264",
        pix_fmt="yuv420p",
        has_audio=True,
        size_bytes=1,
        rotation=rotation,
        sample_aspect=sar,
        avg_fps=avg_fps if avg_fps is not None else fps,
        vfr=vfr,
        video_bitrate=video_bitrate,
    )


def sizes(probe: ProbeResult) -> list[tuple[str, int, int]]:
    return [(r.rung.name, r.width, r.height) for r in renditions_for(probe)]


def test_a_1080p_source_gets_the_default_ladder_highest_first() -> None:
    assert sizes(source(1920, 1080)) == [
        ("1080p", 1920, 1080),
        ("720p", 1280, 720),
        ("480p", 854, 480),
        ("360p", 640, 360),
        ("240p", 426, 240),
    ]


def test_144p_is_opt_in() -> None:
    assert RUNG_144P not in DEFAULT_LADDER
    ladder = default_ladder(with_144p=True)

    assert [r.name for r in ladder_for(source(640, 360), ladder)] == ["360p", "240p", "144p"]
    assert default_ladder() == DEFAULT_LADDER


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (3840, 2160, ["1080p", "720p", "480p", "360p", "240p"]),
        (1279, 719, ["480p", "360p", "240p"]),
        (854, 480, ["480p", "360p", "240p"]),
        (640, 360, ["360p", "240p"]),
        (426, 240, ["240p"]),
        (320, 240, ["240p"]),
    ],
)
def test_no_rung_above_the_source(width: int, height: int, expected: list[str]) -> None:
    rungs = ladder_for(source(width, height))

    assert [rung.name for rung in rungs] == expected
    assert all(rung.height <= height for rung in rungs)


def test_a_source_smaller_than_every_rung_gets_one_rung_of_its_own_even_size() -> None:
    (rung,) = ladder_for(source(321, 181))

    assert (rung.name, rung.height, rung.bpp) == ("180p", 180, DEFAULT_LADDER[-1].bpp)
    assert sizes(source(321, 181)) == [("180p", 320, 180)]


def test_portrait_video_is_laddered_by_its_short_side() -> None:
    assert sizes(source(1080, 1920))[:2] == [("1080p", 1080, 1920), ("720p", 720, 1280)]


def test_rotation_is_applied_before_choosing_sizes() -> None:
    assert sizes(source(1920, 1080, rotation=90)) == sizes(source(1080, 1920))
    assert sizes(source(1920, 1080, rotation=180)) == sizes(source(1920, 1080))


def test_non_square_pixels_are_squared_up() -> None:
    # PAL widescreen: 720x576 stored, 1024x576 shown.
    assert sizes(source(720, 576, sar=64 / 45)) == [
        ("480p", 854, 480),
        ("360p", 640, 360),
        ("240p", 426, 240),
    ]


@pytest.mark.parametrize(
    ("short", "width", "height", "expected"),
    [
        (360, 1920, 1080, (640, 360)),
        (360, 1440, 1080, (480, 360)),  # 4:3
        (360, 2560, 1080, (854, 360)),  # 21:9, 853.3 rounds to even
        (360, 1080, 1920, (360, 640)),
        (240, 427, 240, (428, 240)),
        (240, 321, 241, (320, 240)),  # odd source: even output
    ],
)
def test_frame_sizes_keep_the_aspect_and_are_even(
    short: int, width: int, height: int, expected: tuple[int, int]
) -> None:
    result = frame_size(short, width, height)

    assert result == expected
    assert all(side % 2 == 0 for side in result)


# (rung, 30 fps ceiling in kbit/s at 16:9): PeerTube's table, w × h × fps × bpp.
@pytest.mark.parametrize(
    ("name", "expected_kbps"),
    [
        ("1080p", math.ceil(1920 * 1080 * 30 * 0.10 / 1000)),  # 6221
        ("720p", math.ceil(1280 * 720 * 30 * 0.11 / 1000)),  # 3042
        ("480p", math.ceil(854 * 480 * 30 * 0.12 / 1000)),  # 1476
        ("360p", math.ceil(640 * 360 * 30 * 0.15 / 1000)),  # 1037
        ("240p", math.ceil(426 * 240 * 30 * 0.17 / 1000)),  # 522
    ],
)
def test_bitrates_follow_bits_per_pixel(name: str, expected_kbps: int) -> None:
    rendition = next(r for r in renditions_for(source(1920, 1080)) if r.rung.name == name)

    assert rendition.max_kbps == expected_kbps
    assert rendition.video_kbps == round(expected_kbps * 0.8)
    assert rendition.bufsize_kbps == 2 * expected_kbps


def test_60_fps_doubles_the_hd_budget_only() -> None:
    at_30 = {r.rung.name: r.max_kbps for r in renditions_for(source(1920, 1080, fps=30))}
    at_60 = {r.rung.name: r.max_kbps for r in renditions_for(source(1920, 1080, fps=60))}

    assert at_60["1080p"] == pytest.approx(2 * at_30["1080p"], abs=1)
    assert at_60["720p"] == pytest.approx(2 * at_30["720p"], abs=1)
    assert at_60["480p"] == at_30["480p"]  # 480p plays at 30 fps either way


@pytest.mark.parametrize(
    ("source_bps", "expected_kbps"),
    [
        (None, 3042),  # unknown: the bpp ceiling
        (10_000_000, 3042),  # a rich source: the bpp ceiling
        (2_000_000, 2600),  # a lean source: its bitrate + 30 %
        (10_000, math.ceil(1280 * 720 * 30 * MIN_BPP / 1000)),  # absurdly lean: the floor
    ],
)
def test_the_source_bitrate_caps_the_ceiling_above_the_floor(
    source_bps: int | None, expected_kbps: int
) -> None:
    assert video_ceiling_kbps((1280, 720), Fraction(30), 0.11, source_bps) == expected_kbps


def test_the_source_cap_applies_to_every_rung() -> None:
    lean = {
        r.rung.name: r.max_kbps for r in renditions_for(source(1920, 1080, video_bitrate=10**6))
    }

    assert lean == {"1080p": 1300, "720p": 1300, "480p": 1300, "360p": 1037, "240p": 522}


# (source rate, rung height, expected output rate)
@pytest.mark.parametrize(
    ("rate", "height", "expected"),
    [
        (Fraction(60), 1080, Fraction(60)),
        (Fraction(60), 720, Fraction(60)),
        (Fraction(60), 480, Fraction(30)),
        (Fraction(50), 360, Fraction(25)),
        (NTSC_60, 240, NTSC_30),
        (NTSC_60, 720, NTSC_60),
        (Fraction(48), 480, Fraction(24)),
        (Fraction(120), 1080, Fraction(60)),  # above 60: halved
        (Fraction(240), 1080, Fraction(60)),
        (Fraction(100), 720, Fraction(50)),
        (Fraction(120), 360, Fraction(30)),
        (Fraction(30), 240, Fraction(30)),
        (Fraction(25), 240, Fraction(25)),
        (Fraction(24), 1080, Fraction(24)),
        (None, 720, None),
    ],
)
def test_output_rates(rate: Fraction | None, height: int, expected: Fraction | None) -> None:
    assert output_rate(rate, height) == expected


@pytest.mark.parametrize(
    ("avg", "expected"),
    [
        (29.6, NTSC_30),
        (30.2, Fraction(30)),
        (59.3, NTSC_60),
        (24.7, Fraction(25)),
        (119.0, NTSC_60),  # halved first, then snapped
        (14.0, Fraction(15)),
    ],
)
def test_a_variable_rate_is_snapped_to_a_standard_rate(avg: float, expected: Fraction) -> None:
    assert snap(exact_rate(avg)) == expected
    assert source_rate(source(640, 360, fps=avg, avg_fps=avg, vfr=True)) == expected


def test_a_constant_rate_is_kept_exactly() -> None:
    assert source_rate(source(640, 360, fps=30000 / 1001)) == NTSC_30
    assert source_rate(source(640, 360, fps=23.5)) == Fraction(47, 2)
    assert source_rate(source(640, 360, fps=None)) is None


def test_renditions_carry_their_frame_rate() -> None:
    renditions = renditions_for(source(1920, 1080, fps=60000 / 1001))

    assert [r.rung.name for r in renditions] == ["1080p", "720p", "480p", "360p", "240p"]
    assert [round(r.fps or 0, 2) for r in renditions] == [59.94, 59.94, 29.97, 29.97, 29.97]
    assert exact_rate(renditions_for(source(1920, 1080, fps=60000 / 1001))[2].fps or 0) == NTSC_30


def test_a_source_without_a_rate_keeps_it_and_is_budgeted_as_30_fps() -> None:
    (rendition,) = renditions_for(source(426, 240, fps=None))

    assert rendition.fps is None
    assert rendition.max_kbps == math.ceil(426 * 240 * 30 * 0.17 / 1000)


def test_a_custom_ladder_grows_without_code_changes() -> None:
    ladder = (Rung("1440p", 1440, 0.09), *DEFAULT_LADDER)

    assert [r.name for r in ladder_for(source(2560, 1440), ladder)][:2] == ["1440p", "1080p"]


def test_an_empty_ladder_is_refused() -> None:
    with pytest.raises(ValueError, match="no rungs"):
        ladder_for(source(640, 360), ())
