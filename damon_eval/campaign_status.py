"""Where a campaign stands: each planned run done, failed (kind and reason) or missing.

Read from the run directories (``<results>/runs/<suite>/<workload>/<config>/<NN>/``):
``result.json`` says done or failed; without it the run is missing, and the failure
of an earlier attempt (``attempt-<n>/failure.json``, a run being retried) is shown.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from damon_eval.config.campaign import Campaign
from damon_eval.config.runkey import RunKey

REASON_CHARS = 160


def one_line(text: str, limit: int = REASON_CHARS) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class RunState:
    run: str  # <suite>/<workload>/<config>/<NN>
    state: str  # done | failed | missing
    kind: str = ""  # failure kind (failed), or of the last failed attempt (missing)
    reason: str = ""
    attempt: int | None = None

    def line(self) -> str:
        detail = ""
        if self.state == "failed":
            detail = f"  {self.kind}: {self.reason}"
        elif self.state == "missing" and self.kind:
            detail = f"  (attempt {self.attempt} failed, {self.kind}: {self.reason})"
        return f"{self.state:<8} {self.run}{detail}"

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("run", "state", "kind", "reason", "attempt")}


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    campaign: str
    results_dir: Path
    runs: tuple[RunState, ...]

    def count(self, state: str) -> int:
        return sum(1 for r in self.runs if r.state == state)

    def failed_by_kind(self) -> list[tuple[str, int]]:
        kinds = Counter(r.kind for r in self.runs if r.state == "failed")
        return sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))

    def headline(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in self.failed_by_kind())
        failed = self.count("failed")
        none_ok = "; NO RUN SUCCEEDED" if self.count("done") == 0 and failed else ""
        return (
            f"campaign {self.campaign} ({self.results_dir}): {len(self.runs)} runs: "
            f"{self.count('done')} done, {failed} failed{f' ({kinds})' if kinds else ''}, "
            f"{self.count('missing')} missing{none_ok}"
        )

    def to_dict(self) -> dict:
        return {
            "campaign": self.campaign,
            "results_dir": str(self.results_dir),
            "done": self.count("done"),
            "failed": self.count("failed"),
            "missing": self.count("missing"),
            "failed_by_kind": dict(self.failed_by_kind()),
            "runs": [r.to_dict() for r in self.runs],
        }


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def run_state(run_dir: Path, run: str) -> RunState:
    result_path = run_dir / "result.json"
    if result_path.is_file():
        data = _read(result_path)
        if data is None or data.get("status") not in ("ok", "failed"):
            return RunState(run, "failed", "unreadable", f"{result_path} is not a result.json")
        attempt = (data.get("run") or {}).get("attempt")
        if data["status"] == "ok":
            return RunState(run, "done", attempt=attempt)
        failure = data.get("failure") or {}
        return RunState(
            run, "failed", failure.get("kind", "unknown"), one_line(failure.get("reason", "")),
            attempt,
        )  # fmt: skip
    attempts = sorted(
        (int(p.parent.name.split("-", 1)[1]), p)
        for p in run_dir.glob("attempt-*/failure.json")
        if p.parent.name.split("-", 1)[1].isdigit()
    )
    if attempts:
        number, path = attempts[-1]
        failure = (_read(path) or {}).get("failure") or {}
        return RunState(
            run, "missing", failure.get("kind", "unknown"), one_line(failure.get("reason", "")),
            number,
        )  # fmt: skip
    return RunState(run, "missing")


def campaign_status(campaign: Campaign, results_dir: Path) -> CampaignStatus:
    """Every planned run of ``campaign`` in execution order, with its state; with
    ``repeats: auto``, also the runs of later rounds that were started."""
    results_dir = Path(results_dir)
    keys = list(campaign.runs())
    auto = campaign.auto_repeats
    if auto is not None:
        first = [k for k in keys if k.repeat == 1]
        for repeat in range(campaign.repeats + 1, auto.max_repeats + 1):
            later = [RunKey(k.suite, k.workload, k.config, repeat) for k in first]
            keys += [k for k in later if (results_dir / "runs" / k.relative_dir).is_dir()]
    runs = tuple(
        run_state(results_dir / "runs" / key.relative_dir, key.relative_dir) for key in keys
    )
    return CampaignStatus(campaign.name, results_dir, runs)
