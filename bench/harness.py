"""The benchmark harness: a registry, the result record, and the writer.

A benchmark is a function registered with ``@benchmark("name")`` that returns a
:class:`Measurement` (what it ran on, and what it measured). The harness adds the machine and
the date, prints a table and writes ``bench/results/NAME.json``::

    {"name": ..., "machine": {...}, "date": "2026-01-31T12:00:00Z",
     "inputs": {...}, "figures": {"upload_to_ready_s": 12.3, "ratio_...": 1.2}}

Ratios against baselines measured in the same run are figures like any other.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import platform
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Modules whose import registers benchmarks, in the order `python -m bench` runs them.
BENCHMARK_MODULES = (
    "bench.smoke", "bench.rights", "bench.pipeline", "bench.playback", "bench.live",
    "bench.comments",
)  # fmt: skip

Scalar = str | int | float | bool | None
Inputs = Mapping[str, Scalar]
Figures = Mapping[str, float]


@dataclass(frozen=True)
class Measurement:
    """What a benchmark function returns: its inputs and its figures (numbers only)."""

    inputs: Inputs
    figures: Figures


def machine_info(meminfo: Path = Path("/proc/meminfo")) -> dict[str, Scalar]:
    """The machine, described without naming it (no hostname)."""
    return {
        "arch": platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(meminfo),
        "python": platform.python_version(),
        "system": platform.system(),
    }


def _memory_gib(meminfo: Path) -> float | None:
    try:
        lines = meminfo.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key == "MemTotal":
            return round(int(value.split()[0]) / 1024**2, 1)  # the kernel reports kB
    return None


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Result:
    """One run of one benchmark, as written to ``bench/results/NAME.json``."""

    name: str
    inputs: Inputs
    figures: Figures
    machine: Mapping[str, Scalar] = field(default_factory=machine_info)
    date: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        for figure, value in self.figures.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{self.name}: figure {figure!r} is not a number: {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{self.name}: figure {figure!r} is {value}")

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "machine": dict(self.machine),
            "date": self.date,
            "inputs": dict(self.inputs),
            "figures": dict(self.figures),
        }


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, refusing a zero baseline rather than printing inf."""
    if denominator <= 0:
        raise ValueError(f"baseline must be positive, got {denominator}")
    return numerator / denominator


BenchmarkFn = Callable[[], Measurement]
REGISTRY: dict[str, BenchmarkFn] = {}


def benchmark(name: str) -> Callable[[BenchmarkFn], BenchmarkFn]:
    """Register ``fn`` as benchmark ``name`` (``python -m bench name`` runs it)."""

    def register(fn: BenchmarkFn) -> BenchmarkFn:
        if name in REGISTRY and REGISTRY[name] is not fn:
            raise ValueError(f"benchmark {name!r} is already registered")
        REGISTRY[name] = fn
        return fn

    return register


def load_benchmarks(modules: Iterable[str] = BENCHMARK_MODULES) -> dict[str, BenchmarkFn]:
    for module in modules:
        importlib.import_module(module)
    return REGISTRY


def run(name: str, registry: Mapping[str, BenchmarkFn] = REGISTRY) -> Result:
    """Run one registered benchmark; an unknown name is a KeyError naming the known ones."""
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none"
        raise KeyError(f"no benchmark {name!r} (known: {known})")
    measured = registry[name]()
    return Result(name=name, inputs=measured.inputs, figures=measured.figures)


def format_table(result: Result) -> str:
    """A plain-text table of the figures, under a header with the date, machine and inputs."""
    machine = ", ".join(f"{key}={value}" for key, value in result.machine.items())
    lines = [f"{result.name}  {result.date}", f"  machine: {machine}"]
    lines += [f"  {key}: {value}" for key, value in result.inputs.items()]
    width = max([len("figure"), *map(len, result.figures)])
    lines += ["", f"  {'figure':<{width}}  {'value':>12}", f"  {'-' * width}  {'-' * 12}"]
    lines += [f"  {key:<{width}}  {_number(value):>12}" for key, value in result.figures.items()]
    return "\n".join(lines)


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}" if abs(value) >= 0.001 or value == 0 else f"{value:.3g}"


def write_result(result: Result, out_dir: Path = RESULTS_DIR) -> Path:
    """Write ``out_dir/NAME.json`` (replacing an earlier run's) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    tmp.replace(path)  # a reader never sees half a file
    return path


def report(result: Result, out_dir: Path = RESULTS_DIR, stream: TextIO | None = None) -> Path:
    """Print the table (to stdout unless ``stream``) and write the JSON; returns its path."""
    path = write_result(result, out_dir)
    stream = stream or sys.stdout  # looked up now: stdout may have been replaced since import
    print(format_table(result), file=stream)
    print(f"  -> {path}", file=stream)
    return path
