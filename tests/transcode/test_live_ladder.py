"""The live ladder: no upscaling, the CPU budget respected, at least one rung."""

from __future__ import annotations

import json

import pytest

from transcode.live_ladder import (
    LiveInput,
    LiveInputUnusable,
    LiveLadder,
    choose_ladder,
    cost_cores,
    live_rungs,
    parse_live_probe,
    probe_command,
)


def feed(width: int = 1920, height: int = 1080, fps: float = 30.0) -> LiveInput:
    return LiveInput(width, height, fps, "h264", 6000, has_audio=True)


def names(ladder: LiveLadder) -> list[str]:
    return [rung.name for rung in ladder.rungs]


def test_the_calibration_point_costs_four_cores() -> None:
    assert cost_cores(live_rungs(feed()), "veryfast") == pytest.approx(4.0, rel=0.01)


def test_a_big_budget_gets_the_whole_ladder_at_veryfast() -> None:
    ladder = choose_ladder(feed(), budget_cores=4.5)
    assert (ladder.preset, names(ladder)) == ("veryfast", ["1080p", "720p", "480p", "360p"])


@pytest.mark.parametrize("budget", [0.05, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0])
def test_the_choice_fits_the_budget_or_is_the_cheapest_possible(budget: float) -> None:
    ladder = choose_ladder(feed(), budget)
    if cost_cores(ladder.rungs, ladder.preset) > budget:
        assert (ladder.preset, names(ladder)) == ("ultrafast", ["360p"])
    assert ladder.rungs


def test_a_faster_preset_is_taken_before_a_rung_is_dropped() -> None:
    # Full ladder: veryfast 4 cores, superfast 2.4; without 1080p: veryfast 1.7, superfast 1.0.
    ladder = choose_ladder(feed(), 2.5)
    assert (ladder.preset, names(ladder)) == ("superfast", ["1080p", "720p", "480p", "360p"])
    ladder = choose_ladder(feed(), 1.5)
    assert (ladder.preset, names(ladder)) == ("superfast", ["720p", "480p", "360p"])


def test_ultrafast_only_when_nothing_else_fits() -> None:
    assert choose_ladder(feed(), 0.1).preset == "ultrafast"
    assert choose_ladder(feed(), 0.3).preset != "ultrafast"


def test_no_rung_above_the_input() -> None:
    assert names(choose_ladder(feed(1280, 720), 10)) == ["720p", "480p", "360p"]
    assert names(choose_ladder(feed(854, 480), 10)) == ["480p", "360p"]
    rung = choose_ladder(feed(320, 180), 10).rungs[0]
    assert (rung.name, rung.width, rung.height) == ("180p", 320, 180)


def test_portrait_input_keeps_its_shape_and_small_rungs_drop_to_30_fps() -> None:
    rungs = choose_ladder(feed(720, 1280, fps=60), 10).rungs
    assert [(r.width, r.height, r.fps) for r in rungs] == [
        (720, 1280, 60.0), (480, 854, 30.0), (360, 640, 30.0),
    ]  # fmt: skip


def test_the_ladder_round_trips_through_the_stream_row() -> None:
    ladder = choose_ladder(feed(), 1.5)
    stored = json.loads(json.dumps(ladder.to_json()))
    assert LiveLadder.from_json(stored) == ladder
    assert stored[0]["preset"] == ladder.preset


def test_probe_json_of_an_rtmp_feed() -> None:
    text = json.dumps(
        {
            "streams": [
                {"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720,
                 "avg_frame_rate": "0/0", "r_frame_rate": "30000/1001"},
                {"codec_type": "audio", "codec_name": "aac"},
            ],
            "format": {"tags": {"videodatarate": "2500", "audiodatarate": "128"}},
        }
    )  # fmt: skip
    source = parse_live_probe(text)
    assert source == LiveInput(1280, 720, 30000 / 1001, "h264", 2628, has_audio=True)


@pytest.mark.parametrize("text", ["", "{}", '{"streams": [{"codec_type": "audio"}]}'])
def test_a_feed_without_video_is_unusable(text: str) -> None:
    with pytest.raises(LiveInputUnusable):
        parse_live_probe(text)


def test_the_probe_reads_rtmp_only_and_is_bounded() -> None:
    argv = probe_command("ffprobe", "rtmp://127.0.0.1:1935/live/abc", timeout_s=5)
    assert argv[argv.index("-protocol_whitelist") + 1] == "rtmp,rtmps,tcp,tls"
    assert argv[argv.index("-rw_timeout") + 1] == "5000000"
