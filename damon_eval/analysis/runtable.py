"""The tidy run table: every ``result.json`` of a campaign as rows of ``runs.csv``.

One row per run and metric::

    suite, workload, config, repeat, metric, value,          <- the observation
    kernel,                                                  <- kernels: name ("" without)
    status, attempt, failure_kind,                           <- how the run ended
    accel, guest_kernel, image_hash, harness_revision,       <- provenance
    result_path                                              <- relative to RESULTS_DIR

A failed run is ONE row with an empty ``metric`` and an empty (NaN) ``value``,
so the failure is visible in the table yet can never enter a mean: every
consumer takes values through :func:`ok_values`, which keeps ``status == ok``
rows with a value only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from damon_eval.analysis.errors import ResultFileError, RunTableError
from damon_eval.atomic import atomic_write_text
from damon_eval.config.runkey import RunKey
from damon_eval.metrics import METRICS
from damon_eval.schema import validate

RUNS_COLUMNS: tuple[str, ...] = (
    "suite",
    "workload",
    "config",
    "repeat",
    "metric",
    "value",
    "kernel",
    "status",
    "attempt",
    "failure_kind",
    "accel",
    "guest_kernel",
    "image_hash",
    "harness_revision",
    "result_path",
)
# A plain long table (damon-tests, other harnesses, the seed) needs only these.
REQUIRED_COLUMNS: tuple[str, ...] = RUNS_COLUMNS[:6]
# What a missing optional column means: a successful first attempt of unknown provenance.
COLUMN_DEFAULTS: dict[str, object] = {
    "status": "ok",
    "attempt": 1,
    "failure_kind": "",
    "accel": "",
    "guest_kernel": "",
    "image_hash": "",
    "harness_revision": "",
    "result_path": "",
    "kernel": "",
}
_STRING_COLUMNS = tuple(c for c in RUNS_COLUMNS if c not in ("repeat", "value", "attempt"))
_METRIC_ORDER = {name: i for i, name in enumerate(METRICS)}


@dataclass(frozen=True, slots=True)
class RunResult:
    """What the analysis needs from one ``result.json``."""

    suite: str
    workload: str
    config: str
    repeat: int
    attempt: int
    status: str
    failure_kind: str
    metrics: tuple[tuple[str, float], ...]
    accel: str
    guest_kernel: str
    image_hash: str
    harness_revision: str
    result_path: str
    kernel: str = ""  # the campaign's kernel name (kernels:)

    @property
    def workload_id(self) -> str:
        return f"{self.suite}/{self.workload}"


def load_result(path: Path, results_dir: Path | None = None) -> RunResult:
    """Read and validate one ``result.json``.

    With ``results_dir`` the file must sit at
    ``runs/[<kernel>/]<suite>/<workload>/<config>/<NN>/result.json`` below it, matching
    its ``run`` object, and ``result_path`` is recorded relative to it.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{path}: not valid JSON: {exc}") from exc
    _check_status(data, path)
    _validate(data, path)

    run = data["run"]
    unknown = [m for m in data["metrics"] if m not in METRICS]
    if unknown:
        raise ResultFileError(
            f"{path}: metrics: unknown metric {unknown[0]!r}; valid: {', '.join(METRICS)}"
        )
    bad = [m for m, v in data["metrics"].items() if not math.isfinite(v)]
    if bad:
        raise ResultFileError(
            f"{path}: metrics.{bad[0]}: {data['metrics'][bad[0]]!r} is not finite"
        )

    relative = path.as_posix()
    if results_dir is not None:
        relative_path = path.relative_to(results_dir)
        relative = relative_path.as_posix()
        key = RunKey(
            run["suite"], run["workload"], run["config"], int(run["repeat"]), run.get("kernel", "")
        )
        expected = Path("runs", key.relative_dir, "result.json")
        if relative_path != expected:
            raise ResultFileError(f"{path}: run {key} belongs in {expected}, not {relative}")

    provenance = data["provenance"]
    guest = provenance.get("guest") or {}
    failure = data["failure"] or {}
    metrics = tuple(sorted(data["metrics"].items(), key=lambda kv: _METRIC_ORDER[kv[0]]))
    return RunResult(
        suite=run["suite"],
        workload=run["workload"],
        config=run["config"],
        repeat=int(run["repeat"]),
        attempt=int(run["attempt"]),
        status=data["status"],
        failure_kind=failure.get("kind", ""),
        metrics=tuple((name, float(value)) for name, value in metrics),
        accel=guest.get("accel", ""),
        guest_kernel=guest.get("kernel_release", ""),
        image_hash=_image_identity(guest),
        harness_revision=provenance["harness_revision"],
        result_path=relative,
        kernel=run.get("kernel", ""),
    )


def _image_identity(guest: dict) -> str:
    """``<image key>/<build id>``: the spec's hash and the one build of it the run booted."""
    key, build = guest.get("image_key", ""), guest.get("image_build_id", "")
    return f"{key}/{build}" if key and build else key


def _validate(data: object, path: Path) -> None:
    """Check ``data`` against result.schema.json; the error names the file and the key."""
    validate(data, "result", path, error=ResultFileError, fill_defaults=False)


def _check_status(data: object, path: Path) -> None:
    """Status/failure/metrics consistency, with clearer words than the schema's."""
    if not isinstance(data, dict):
        return
    status, failure, metrics = data.get("status"), data.get("failure"), data.get("metrics")
    if status == "failed" and failure is None:
        raise ResultFileError(f"{path}: failure: a failed run needs a failure object, not null")
    if status == "failed" and isinstance(metrics, dict) and metrics:
        raise ResultFileError(
            f"{path}: metrics: a failed run yields no numbers, found {len(metrics)} "
            f"({', '.join(sorted(metrics)[:3])}...)"
        )
    if status == "ok" and failure is not None:
        raise ResultFileError(f"{path}: failure: must be null when status is ok")


def find_result_files(results_dir: Path) -> list[Path]:
    """Every ``runs/[*/]*/*/*/*/result.json`` below ``results_dir``, sorted."""
    results_dir = Path(results_dir)
    runs_dir = results_dir / "runs"
    if not runs_dir.is_dir():
        raise RunTableError(
            f"{results_dir}: no runs/ directory (expected "
            f"{runs_dir}/<suite>/<workload>/<config>/<NN>/result.json)"
        )
    return sorted([*runs_dir.glob("*/*/*/*/result.json"), *runs_dir.glob("*/*/*/*/*/result.json")])


def rows_of(result: RunResult) -> list[dict]:
    """The rows of one run: one per metric, or one metric-less row if it failed."""
    common = {
        "suite": result.suite,
        "workload": result.workload,
        "config": result.config,
        "repeat": result.repeat,
        "kernel": result.kernel,
        "status": result.status,
        "attempt": result.attempt,
        "failure_kind": result.failure_kind,
        "accel": result.accel,
        "guest_kernel": result.guest_kernel,
        "image_hash": result.image_hash,
        "harness_revision": result.harness_revision,
        "result_path": result.result_path,
    }
    if result.status != "ok" or not result.metrics:
        return [{**common, "metric": "", "value": math.nan}]
    return [{**common, "metric": name, "value": value} for name, value in result.metrics]


def runs_frame(results: Iterable[RunResult]) -> pd.DataFrame:
    """The tidy table of ``results``, in a canonical order."""
    rows = [row for result in results for row in rows_of(result)]
    frame = pd.DataFrame(rows, columns=list(RUNS_COLUMNS))
    return _canonical(frame)


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"repeat": "int64", "attempt": "int64", "value": "float64"})
    for column in _STRING_COLUMNS:
        frame[column] = frame[column].fillna("").astype(str)
    order = frame["metric"].map(lambda m: _METRIC_ORDER.get(m, -1))
    frame = (
        frame.assign(_order=order)
        .sort_values(["kernel", "suite", "workload", "config", "repeat", "_order"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    return frame


def collect_runs(results_dir: Path) -> pd.DataFrame:
    """Read every ``result.json`` of ``results_dir`` into the tidy table."""
    results_dir = Path(results_dir)
    files = find_result_files(results_dir)
    if not files:
        raise RunTableError(
            f"{results_dir}: no result.json files under runs/<suite>/<workload>/<config>/<NN>/"
        )
    return runs_frame(load_result(path, results_dir) for path in files)


def runs_csv_text(frame: pd.DataFrame) -> str:
    """``runs.csv`` as text; floats in shortest round-trip form, so it is deterministic."""
    return frame.loc[:, list(RUNS_COLUMNS)].to_csv(index=False, lineterminator="\n")


def write_runs_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_text(Path(path), runs_csv_text(frame))


def read_runs_csv(path: Path) -> pd.DataFrame:
    """Read a ``runs.csv`` written by :func:`write_runs_csv` and check its shape."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={c: str for c in _STRING_COLUMNS}, keep_default_na=False)
    except FileNotFoundError as exc:
        raise RunTableError(f"{path}: no such file (make it with `damon-eval collect`)") from exc
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RunTableError(f"{path}: not a readable runs.csv: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise RunTableError(
            f"{path}: missing column(s) {', '.join(missing)}; a plain table needs "
            f"{', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(COLUMN_DEFAULTS)})"
        )
    filled = {c: v for c, v in COLUMN_DEFAULTS.items() if c not in frame.columns}
    for column, default in filled.items():
        frame[column] = default
    frame = frame.loc[:, list(RUNS_COLUMNS)]
    try:
        frame["value"] = pd.to_numeric(frame["value"].replace("", math.nan), errors="raise")
        frame["repeat"] = pd.to_numeric(frame["repeat"], errors="raise")
        frame["attempt"] = pd.to_numeric(frame["attempt"], errors="raise")
    except (ValueError, TypeError) as exc:
        raise RunTableError(f"{path}: non-numeric value/repeat/attempt: {exc}") from exc
    unknown = sorted(set(frame["metric"]) - set(METRICS) - {""})
    if unknown:
        raise RunTableError(f"{path}: unknown metric {unknown[0]!r}; valid: {', '.join(METRICS)}")
    bad_status = sorted(set(frame["status"]) - {"ok", "failed"})
    if bad_status:
        raise RunTableError(f"{path}: unknown status {bad_status[0]!r}; valid: ok, failed")
    frame = _canonical(frame)
    frame.attrs["defaulted_columns"] = filled
    return frame


def defaults_note(frame: pd.DataFrame) -> str:
    """One line naming the columns a plain table lacked and the defaults filled in ("" if none)."""
    filled = frame.attrs.get("defaulted_columns") or {}
    if not filled:
        return ""
    shown = ", ".join(f"{c}={v!r}" for c, v in filled.items())
    return f"note: plain table; columns filled with defaults: {shown}"


def ok_values(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that may enter statistics: successful runs with a value."""
    return frame[(frame["status"] == "ok") & frame["value"].notna() & (frame["metric"] != "")]


def kernels_of(frame: pd.DataFrame) -> list[str]:
    """The kernel names of a run table's rows (``[""]``: one unnamed kernel)."""
    if "kernel" not in frame.columns:
        return [""]
    return sorted(set(frame["kernel"].astype(str))) or [""]


def runs_of_kernel(frame: pd.DataFrame, kernel: str | None) -> pd.DataFrame:
    """The rows of one kernel of a ``kernels:`` campaign's run table (all rows for None
    or ""): a configuration table is of one kernel, never an average over two."""
    if not kernel:
        return frame
    present = [k for k in kernels_of(frame) if k]
    if kernel not in present:
        raise RunTableError(
            f"kernel {kernel!r} is not in the run table; its kernels: "
            f"{', '.join(present) or 'none (a campaign without kernels:)'}"
        )
    return frame[frame["kernel"] == kernel]


def workload_ids(frame: pd.DataFrame) -> list[str]:
    """``suite/workload`` ids present in the table, sorted (suite, then name)."""
    pairs = frame.loc[:, ["suite", "workload"]].drop_duplicates()
    return [f"{s}/{w}" for s, w in sorted(pairs.itertuples(index=False, name=None))]


def failed_runs(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] != "ok"].loc[
        :, ["suite", "workload", "config", "repeat", "attempt", "failure_kind", "result_path"]
    ]
