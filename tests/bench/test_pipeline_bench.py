"""The baselines of ``bench transcode`` write the ladder the pipeline writes, in one process
(the floor) or one process per rung, so the ratios compare like with like."""

from __future__ import annotations

from pathlib import Path

import m3u8

from bench.pipeline import encoded_rungs, floor_argv, per_rung_argvs, run_all
from tests.media import OddVideo, make_clip
from transcode.probe import probe
from transcode.runner import run_ffmpeg


def test_the_floor_is_one_process_copying_the_top_rung_and_encoding_the_rest(
    tmp_path: Path,
) -> None:
    source = make_clip(tmp_path, seconds=2, width=854, height=480, odd=OddVideo(gop=30))
    info = probe(source, timeout_s=30)
    rungs = encoded_rungs(info)
    argv = floor_argv("ffmpeg", source, tmp_path / "floor", rungs, info.fps)
    assert argv.count("-i") == 1  # one decode
    assert argv[argv.index("-c:v:0") + 1] == "copy"
    assert f"split={len(rungs)}" in argv[argv.index("-filter_complex") + 1]

    (tmp_path / "floor").mkdir()
    run_ffmpeg(argv, timeout_s=120)
    master = m3u8.load(str(tmp_path / "floor" / "master.m3u8"))
    resolutions = [p.stream_info.resolution for p in master.playlists]
    heights = sorted(size[1] for size in resolutions if size)  # the audio variant has none
    assert heights == sorted([480, *(r.height for r in rungs)])


def test_per_rung_runs_one_process_per_rung_each_decoding_again(tmp_path: Path) -> None:
    source = make_clip(tmp_path, seconds=2, width=854, height=480, odd=OddVideo(gop=30))
    info = probe(source, timeout_s=30)
    rungs = encoded_rungs(info)
    argvs = per_rung_argvs("ffmpeg", source, tmp_path / "per-rung", rungs, info.fps)
    assert len(argvs) == len(rungs) + 1  # the copy with the audio, then each encoded rung
    assert all(argv.count("-i") == 1 for argv in argvs)
    for index in range(len(rungs)):
        (tmp_path / "per-rung" / f"rung{index}").mkdir(parents=True)
    run_all(argvs)
    assert all(
        (tmp_path / "per-rung" / f"rung{i}" / "v0" / "index.m3u8").exists()
        for i in range(len(rungs))
    )
