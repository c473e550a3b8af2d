"""The benchmark harness: registry, result JSON, table, and ``python -m bench``.

These never run a real benchmark (``make bench`` does); they use tiny registered functions.
"""

from __future__ import annotations

import json
import math
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench import harness
from bench.harness import Measurement, Result


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, harness.BenchmarkFn]:
    """An empty registry in place of the real one, for the test's own benchmarks."""
    fresh: dict[str, harness.BenchmarkFn] = {}
    monkeypatch.setattr(harness, "REGISTRY", fresh)
    return fresh


def _fixed() -> Measurement:
    return Measurement(
        inputs={"clip": "10 s test pattern", "clip_bytes": 1234},
        figures={"upload_to_ready_s": 12.5, "baseline_s": 2.5, "ratio_vs_baseline": 5.0},
    )


def _result(**figures: float) -> Result:
    return Result(
        name="demo",
        inputs={"clip": "10 s test pattern"},
        figures=figures or {"upload_to_ready_s": 12.3456, "ratio_vs_baseline": 0.00012},
        machine={"arch": "x86_64", "cpus": 2},
        date="2026-01-31T12:00:00Z",
    )


# --- registry ----------------------------------------------------------------------------


def test_decorator_registers_and_returns_the_function(
    registry: dict[str, harness.BenchmarkFn],
) -> None:
    decorated = harness.benchmark("fixed")(_fixed)
    assert decorated is _fixed
    assert registry == {"fixed": _fixed}
    harness.benchmark("fixed")(_fixed)  # importing a module twice is harmless
    assert registry == {"fixed": _fixed}


@pytest.mark.usefixtures("registry")
def test_a_name_cannot_be_taken_twice() -> None:
    harness.benchmark("fixed")(_fixed)
    with pytest.raises(ValueError, match="already registered"):
        harness.benchmark("fixed")(lambda: _fixed())


def test_run_builds_a_result_with_machine_and_date(
    registry: dict[str, harness.BenchmarkFn],
) -> None:
    harness.benchmark("fixed")(_fixed)
    result = harness.run("fixed", registry)
    assert (result.name, result.inputs, result.figures) == (
        "fixed",
        _fixed().inputs,
        _fixed().figures,
    )
    assert result.machine == harness.machine_info()
    assert datetime.strptime(result.date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= (
        datetime.now(UTC)
    )


def test_run_of_an_unknown_name_lists_the_known_ones(
    registry: dict[str, harness.BenchmarkFn],
) -> None:
    harness.benchmark("fixed")(_fixed)
    with pytest.raises(KeyError, match="known: fixed"):
        harness.run("nope", registry)


def test_the_smoke_benchmark_is_registered_by_loading() -> None:
    assert "smoke" in harness.load_benchmarks()


# --- result and JSON ---------------------------------------------------------------------


def test_json_has_exactly_the_documented_shape(tmp_path: Path) -> None:
    path = harness.write_result(_result(), tmp_path / "out")
    assert path == tmp_path / "out" / "demo.json"
    data = json.loads(path.read_text())
    assert list(data) == ["name", "machine", "date", "inputs", "figures"]
    assert data["name"] == "demo"
    assert data["date"] == "2026-01-31T12:00:00Z"
    assert data["inputs"] == {"clip": "10 s test pattern"}
    assert data["figures"] == {"upload_to_ready_s": 12.3456, "ratio_vs_baseline": 0.00012}
    assert [p.name for p in path.parent.iterdir()] == ["demo.json"]  # no temp file left


def test_a_second_run_replaces_the_first(tmp_path: Path) -> None:
    harness.write_result(_result(upload_to_ready_s=20.0), tmp_path)
    harness.write_result(_result(upload_to_ready_s=10.0), tmp_path)
    assert json.loads((tmp_path / "demo.json").read_text())["figures"] == {
        "upload_to_ready_s": 10.0
    }


def test_machine_is_described_without_its_name(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemFree:  1000 kB\nMemTotal:       16384000 kB\n")
    machine = harness.machine_info(meminfo)
    assert machine["memory_gib"] == 15.6
    assert machine["arch"] == platform.machine()
    assert machine["python"] == platform.python_version()
    assert isinstance(machine["cpus"], int)
    text = json.dumps(Result("x", {}, {}).to_json())
    for name in {socket.gethostname(), platform.node()} - {""}:
        assert name not in text


def test_memory_is_none_without_meminfo(tmp_path: Path) -> None:
    assert harness.machine_info(tmp_path / "missing")["memory_gib"] is None
    (tmp_path / "empty").write_text("MemFree: 1 kB\n")
    assert harness.machine_info(tmp_path / "empty")["memory_gib"] is None


@pytest.mark.parametrize("bad", [math.nan, math.inf, "12 s", True])
def test_figures_must_be_finite_numbers(bad: object) -> None:
    with pytest.raises((ValueError, TypeError), match="figure 'x'"):
        Result("demo", {}, {"x": bad})  # type: ignore[dict-item]  # the point is a wrong type


def test_ratio_refuses_a_zero_baseline() -> None:
    assert harness.ratio(3.0, 1.5) == 2.0
    with pytest.raises(ValueError, match="baseline"):
        harness.ratio(3.0, 0.0)


# --- table -------------------------------------------------------------------------------


def test_table_lists_inputs_and_every_figure_aligned() -> None:
    table = harness.format_table(_result())
    lines = table.splitlines()
    assert lines[0] == "demo  2026-01-31T12:00:00Z"
    assert "machine: arch=x86_64, cpus=2" in lines[1]
    assert "  clip: 10 s test pattern" in lines
    assert any(line.split() == ["upload_to_ready_s", "12.346"] for line in lines)
    assert any(line.split() == ["ratio_vs_baseline", "0.00012"] for line in lines)
    figure_rows = [
        line for line in lines if line.split()[:1] in (["upload_to_ready_s"], ["ratio_vs_baseline"])
    ]
    assert len({len(row) for row in figure_rows}) == 1  # values right-aligned in one column


def test_report_prints_the_table_and_writes_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = harness.report(_result(), tmp_path)
    out = capsys.readouterr().out
    assert harness.format_table(_result()) in out
    assert str(path) in out
    assert path.is_file()


# --- python -m bench ---------------------------------------------------------------------


def _broken() -> Measurement:
    raise RuntimeError("the stack did not start")


@pytest.fixture
def fake_benchmarks(monkeypatch: pytest.MonkeyPatch) -> dict[str, harness.BenchmarkFn]:
    fake: dict[str, harness.BenchmarkFn] = {"fixed": _fixed, "broken": _broken}
    monkeypatch.setattr(bench_main, "load_benchmarks", lambda: fake)
    return fake


@pytest.mark.usefixtures("fake_benchmarks")
def test_cli_runs_one_benchmark_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main.main(["fixed", "--out", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["fixed.json"]
    assert "upload_to_ready_s" in capsys.readouterr().out


@pytest.mark.usefixtures("fake_benchmarks")
def test_cli_without_names_runs_all_and_reports_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench_main.main(["--out", str(tmp_path)]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["fixed.json"]
    err = capsys.readouterr().err
    assert "the stack did not start" in err
    assert "failed: broken" in err


@pytest.mark.usefixtures("fake_benchmarks")
def test_cli_refuses_an_unknown_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench_main.main(["nope", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no benchmark nope" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("fake_benchmarks")
def test_cli_lists_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main.main(["--list"]) == 0
    assert capsys.readouterr().out.split() == ["fixed", "broken"]
