"""The ``rights`` benchmark's pure helpers (``make bench B=rights`` runs the benchmark itself)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import rights
from bench.rights import BenchmarkFailed, LoadStats
from rights.evaluate import evaluate
from rights.model import CLIP_LICENSES

WRK_OUTPUT = """\
Running 8s test @ http://127.0.0.1:41234/healthz
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    17.21ms    9.10ms 130.16ms   88.00%
    Req/Sec     1.51k   120.00     1.70k    80.00%
  Latency Distribution
     50%   19.49ms
     75%   21.00ms
     90%   25.00ms
     99%  130.16ms
  12048 requests in 8.00s, 1.85MB read
Requests/sec:   1505.96
Transfer/sec:    236.00KB
"""


def test_parse_wrk_reads_throughput_and_percentiles() -> None:
    assert rights.parse_wrk(WRK_OUTPUT) == LoadStats(
        rps=1505.96, p50_ms=19.49, p99_ms=130.16, requests=12048, errors=0
    )


def test_parse_wrk_converts_units_and_counts_errors() -> None:
    output = (
        WRK_OUTPUT.replace("19.49ms", "950.00us")
        .replace("130.16ms", "1.20s")
        .replace(
            "Requests/sec:",
            "  Socket errors: connect 0, read 2, write 0, timeout 1\n"
            "  Non-2xx or 3xx responses: 4\nRequests/sec:",
        )
    )
    stats = rights.parse_wrk(output)
    assert stats.p50_ms == pytest.approx(0.95)
    assert stats.p99_ms == pytest.approx(1200.0)
    assert stats.errors == 7


def test_parse_wrk_refuses_output_without_figures() -> None:
    with pytest.raises(BenchmarkFailed):
        rights.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_check_fraction_is_the_share_of_a_request_spent_checking() -> None:
    # 1/400 s per request with the check, 1/1000 s without: 60 % of it is the check.
    assert rights.check_fraction(400.0, 1000.0) == pytest.approx(0.6)
    assert rights.check_fraction(500.0, 500.0) == 0.0
    with pytest.raises(ValueError, match="positive"):
        rights.check_fraction(0.0, 100.0)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert rights.percentile(values, 0.50) == 50.0
    assert rights.percentile(values, 0.99) == 99.0
    assert rights.percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        rights.percentile([], 0.5)


def test_content_length_of_a_response_head() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 619\r\n\r\n"
    assert rights.content_length(head) == 619
    with pytest.raises(ValueError, match="Content-Length"):
        rights.content_length(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")


def test_media_playlist_lists_every_segment() -> None:
    text = rights.media_playlist().decode()
    assert text.startswith("#EXTM3U\n")
    assert text.endswith("#EXT-X-ENDLIST\n")
    assert text.count("#EXTINF:") == rights.SEGMENTS == 15
    assert "seg_00014.m4s" in text


def test_server_env_is_ours_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COURTSIDE_DATABASE_URL", "postgresql://somewhere-else/db")
    monkeypatch.setenv("COURTSIDE_PUBLIC_BASE_URL", "https://example.invalid")
    env = rights.server_env(rights.settings_values(tmp_path))
    assert env["COURTSIDE_DATABASE_URL"] == f"sqlite:///{tmp_path / 'courtside.db'}"
    assert "COURTSIDE_PUBLIC_BASE_URL" not in env
    assert json.loads(env["COURTSIDE_TRUSTED_PROXIES"]) == ["127.0.0.1/32"]
    assert env["COURTSIDE_REDIS_URL"].startswith("redis://127.0.0.1:")


def test_sample_viewers_get_the_decisions_the_benchmark_claims() -> None:
    item = rights.sample_item()
    assert len(item.levels) == 3
    assert all(len(level.grants) == 2 for level in item.levels)
    for viewer, expected in rights.SAMPLE_VIEWERS:
        assert evaluate(item, viewer, rights.NOW, CLIP_LICENSES).reason is expected


def test_rate_counts_calls() -> None:
    measured = rights.rate(lambda: None, 2, 0.01)
    assert measured.wall_per_s > 0
    assert measured.cpu_per_s > 0
    assert measured.cpu_us == pytest.approx(1e6 / measured.cpu_per_s)
