"""A damon-tests / lazybox results tree as the tidy run table.

Layout (damon-tests ``perf/``, lazybox ``repeat_runs``)::

    results/<suite>/<workload>/<config>/<NN>/
        commlog            bash ``time`` output: ``real  XmY.YYYs``      -> runtime (s)
        memfree            one MemFree sample (KiB) per second          -> memused.avg
        memfps | memfp     ``ps -o vsz=,rss=,pid=,cmd=`` per second     -> rss.avg
        kdamond_cpu_util   cumulative utilisation samples (fraction)    -> kdamond_cpu_util

The metrics follow damon-tests' own definitions: memused is ``MemFree[0] -
MemFree[t]`` with ``memused.avg`` the integer mean over all samples; rss.avg
the mean RSS sample; kdamond_cpu_util the last cumulative sample x 100.
Only ``commlog`` is required; a missing optional file just omits its metric.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from damon_eval.analysis.errors import DamonTestsImportError
from damon_eval.analysis.runtable import RunResult, runs_frame

_REAL = re.compile(r"^real\s+(?:(\d+)m)?(\d+(?:\.\d+)?)s\s*$")
_RUN_DIR = re.compile(r"^\d{2}$")
RSS_FILES = ("memfps", "memfp")


def results_root(path: Path) -> Path:
    """``DIR/results`` if it exists, else ``DIR`` (either may be given)."""
    path = Path(path)
    if not path.is_dir():
        raise DamonTestsImportError(f"{path}: not a directory")
    return path / "results" if (path / "results").is_dir() else path


def run_dirs(root: Path) -> list[Path]:
    """Every ``<suite>/<workload>/<config>/<NN>/`` below ``root``, sorted."""
    found = sorted(p for p in root.glob("*/*/*/*") if p.is_dir() and _RUN_DIR.match(p.name))
    if not found:
        raise DamonTestsImportError(
            f"{root}: no run directories <suite>/<workload>/<config>/<NN>/ (NN = 01..99)"
        )
    return found


def parse_runtime(path: Path) -> float:
    """Seconds of the ``real`` line of bash's ``time`` output in ``commlog``."""
    for line in _read_lines(path):
        match = _REAL.match(line.strip())
        if match:
            minutes, seconds = match.groups()
            return int(minutes or 0) * 60 + float(seconds)
    raise DamonTestsImportError(f"{path}: no 'real XmY.YYYs' line (bash time output)")


def parse_memused_avg(path: Path) -> float:
    """Integer mean of ``MemFree[0] - MemFree[t]`` (damon-tests' memused.avg)."""
    samples = [_last_number(path, n, line) for n, line in _numbered(path)]
    if not samples:
        raise DamonTestsImportError(f"{path}: no MemFree samples")
    used = [samples[0] - sample for sample in samples]
    return float(int(sum(used) // len(used)))


def parse_rss_avg(path: Path) -> float:
    """Mean of the RSS column (KiB) of ``ps -o vsz=,rss=,pid=,cmd=`` samples."""
    samples = []
    for number, line in _numbered(path):
        fields = line.split()
        if fields[0] == "vsz":  # header line of lazybox's memfp.sh
            continue
        try:
            samples.append(float(fields[1]))
        except (IndexError, ValueError):
            raise DamonTestsImportError(
                f"{path}:{number}: {line.strip()!r} is not 'vsz rss pid cmd'"
            ) from None
    if not samples:
        raise DamonTestsImportError(f"{path}: no RSS samples")
    return sum(samples) / len(samples)


def parse_kdamond_cpu_util(path: Path) -> float:
    """The last cumulative utilisation sample x 100 (percent)."""
    lines = list(_numbered(path))
    if not lines:
        raise DamonTestsImportError(f"{path}: no utilisation samples")
    number, line = lines[-1]
    return _last_number(path, number, line) * 100


def load_run(run_dir: Path, root: Path) -> RunResult:
    suite, workload, config, repeat = run_dir.relative_to(root).parts
    metrics = [("runtime", parse_runtime(run_dir / "commlog"))]
    if (run_dir / "memfree").is_file():
        metrics.append(("memused.avg", parse_memused_avg(run_dir / "memfree")))
    rss_file = next((run_dir / n for n in RSS_FILES if (run_dir / n).is_file()), None)
    if rss_file is not None:
        metrics.append(("rss.avg", parse_rss_avg(rss_file)))
    if (run_dir / "kdamond_cpu_util").is_file():
        metrics.append(("kdamond_cpu_util", parse_kdamond_cpu_util(run_dir / "kdamond_cpu_util")))
    return RunResult(
        suite=suite,
        workload=workload,
        config=config,
        repeat=int(repeat),
        attempt=1,
        status="ok",
        failure_kind="",
        metrics=tuple(metrics),
        accel="",
        guest_kernel="",
        image_hash="",
        harness_revision="",
        result_path=run_dir.relative_to(root).as_posix(),
    )


def import_damon_tests(path: Path) -> pd.DataFrame:
    """The tidy run table of a damon-tests results tree (``DIR`` or ``DIR/results``)."""
    root = results_root(path)
    return runs_frame(load_run(run_dir, root) for run_dir in run_dirs(root))


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        raise DamonTestsImportError(f"{path}: missing (every run needs its commlog)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DamonTestsImportError(f"{path}: cannot read: {exc}") from exc


def _numbered(path: Path):
    for number, line in enumerate(_read_lines(path), start=1):
        if line.strip():
            yield number, line


def _last_number(path: Path, number: int, line: str) -> float:
    """The sample of a line: its last number (``MemFree: N kB``, ``T N`` or ``N``)."""
    fields = [f for f in line.replace(":", " ").split() if f not in ("kB", "KiB")]
    try:
        return float(fields[-1])
    except (IndexError, ValueError):
        raise DamonTestsImportError(
            f"{path}:{number}: {line.strip()!r} has no numeric sample"
        ) from None
