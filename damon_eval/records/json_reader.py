"""damo's JSON record (a list of ``DamonRecord`` objects), plain or zlib-compressed."""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from damon_eval.errors import RecordFormatError
from damon_eval.records import damo_text
from damon_eval.records.model import (
    AGE_UNKNOWN,
    COUNT_DTYPE,
    START_UNKNOWN,
    Intervals,
    SnapshotChunk,
    TargetKey,
)
from damon_eval.records.reader import REGION_DTYPE, RecordReader, chunk_from_pending


class JsonReader(RecordReader):
    """damo's JSON record (a list of DamonRecord objects), plain or zlib-compressed."""

    def __init__(self, path: Path, *, allow_partial: bool = False, compressed: bool = False):
        super().__init__(path, allow_partial=allow_partial)
        self.compressed = compressed
        self.format = "json_compressed" if compressed else "json"

    def _load(self) -> object:
        raw = self.path.read_bytes()
        if self.compressed:
            try:
                raw = zlib.decompress(raw)
            except zlib.error as exc:
                raise RecordFormatError(
                    f"record {self.path}: zlib stream is corrupt or truncated ({exc}); "
                    "a compressed JSON record cannot be partially used"
                ) from None
        try:
            return json.loads(raw)
        except UnicodeDecodeError as exc:
            raise RecordFormatError(
                f"record {self.path}: byte {exc.start}: not UTF-8 JSON text"
            ) from None
        except json.JSONDecodeError as exc:
            raise RecordFormatError(
                f"record {self.path}: line {exc.lineno} column {exc.colno}: invalid JSON "
                f"({exc.msg}); a JSON record cannot be partially used"
            ) from None

    def _chunks(self) -> Iterator[SnapshotChunk]:
        doc = self._load()
        if not isinstance(doc, list):
            raise RecordFormatError(
                f"record {self.path}: top level must be a list of damo DamonRecord objects, "
                f"got {type(doc).__name__}"
            )
        pending: list[tuple[int, int, int, np.ndarray]] = []
        ages: list[np.ndarray] = []
        index: dict[TargetKey, int] = {}
        for r, rec in enumerate(doc):
            where = f"record {self.path}: [{r}]"
            if not isinstance(rec, dict) or "snapshots" not in rec or "target_id" not in rec:
                raise RecordFormatError(f"{where}: expected an object with target_id, snapshots")
            scheme = rec.get("scheme_idx")
            key = TargetKey(
                damo_text.to_int(rec["target_id"], f"{where}.target_id"),
                None if scheme is None else damo_text.to_int(scheme, f"{where}.scheme_idx"),
                None if scheme is None else int(rec.get("context_idx") or 0),
            )
            if key not in index:
                index[key] = len(self.targets)
                self.targets.append(key)
            intervals = self._intervals(rec.get("intervals"), f"{where}.intervals")
            if intervals is not None:
                self.intervals = intervals
            tidx = index[key]
            snapshots = rec["snapshots"]
            if not isinstance(snapshots, list):
                raise RecordFormatError(f"{where}.snapshots: expected a list")
            for s, snap in enumerate(snapshots):
                swhere = f"{where}.snapshots[{s}]"
                if not isinstance(snap, dict) or "regions" not in snap or "end_time" not in snap:
                    raise RecordFormatError(f"{swhere}: expected start_time, end_time, regions")
                end_ns = damo_text.to_ns(snap["end_time"], f"{swhere}.end_time")
                start = snap.get("start_time")
                start_ns = (
                    int(START_UNKNOWN)
                    if start is None
                    else damo_text.to_ns(start, f"{swhere}.start_time")
                )
                regions, age = self._regions(snap["regions"], swhere, intervals)
                pending.append((end_ns, start_ns, tidx, regions))
                ages.append(age)
        if not pending:
            raise RecordFormatError(f"record {self.path}: no snapshots in the file")
        order = sorted(range(len(pending)), key=lambda i: pending[i][0])
        pending = [pending[i] for i in order]
        ages = [ages[i] for i in order]
        chunk = chunk_from_pending(pending)
        age = np.concatenate(ages) if chunk.n_regions else chunk.age
        yield dataclasses.replace(chunk, age=age.astype(COUNT_DTYPE))

    @staticmethod
    def _intervals(kv: object, where: str) -> Intervals | None:
        if kv is None:
            return None
        if not isinstance(kv, dict):
            raise RecordFormatError(f"{where}: expected an object")
        try:
            return Intervals(
                sample_us=damo_text.to_us(kv.get("sample_us", kv.get("sample")), where),
                aggr_us=damo_text.to_us(kv.get("aggr_us", kv.get("aggr")), where),
                update_us=damo_text.to_us(
                    kv.get("ops_update_us", kv.get("update_us", kv.get("update", 0))), where
                ),
            )
        except RecordFormatError:
            raise
        except Exception:
            raise RecordFormatError(
                f"{where}: expected sample_us, aggr_us, ops_update_us"
            ) from None

    @staticmethod
    def _regions(
        regions: object, where: str, intervals: Intervals | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(regions, list):
            raise RecordFormatError(f"{where}.regions: expected a list")
        out = np.zeros(len(regions), dtype=REGION_DTYPE)
        age = np.full(len(regions), AGE_UNKNOWN, dtype=np.uint32)
        for i, reg in enumerate(regions):
            rwhere = f"{where}.regions[{i}]"
            if not isinstance(reg, dict) or "start" not in reg or "end" not in reg:
                raise RecordFormatError(f"{rwhere}: expected an object with start and end")
            start = damo_text.to_bytes(reg["start"], f"{rwhere}.start")
            end = damo_text.to_bytes(reg["end"], f"{rwhere}.end")
            if start > end:
                raise RecordFormatError(f"{rwhere}: start {start} is above end {end}")
            out[i] = (start, end, _json_nr_accesses(reg.get("nr_accesses"), rwhere, intervals))
            a = _json_age(reg.get("age"), rwhere, intervals)
            if a is not None:
                age[i] = a
        return out, age


def _json_nr_accesses(kv: object, where: str, intervals: Intervals | None) -> int:
    if kv is None:
        raise RecordFormatError(f"{where}: no nr_accesses")
    if not isinstance(kv, dict):
        return damo_text.to_int(kv, f"{where}.nr_accesses")
    if kv.get("samples") is not None:
        return damo_text.to_int(kv["samples"], f"{where}.nr_accesses.samples")
    if kv.get("percent") is not None and intervals is not None:
        # damo's DamonNrAccesses.add_unset_unit()
        percent = float(str(kv["percent"]).rstrip("%").strip())
        return int(percent * (intervals.aggr_us / intervals.sample_us) / 100)
    raise RecordFormatError(f"{where}.nr_accesses: neither samples nor percent with intervals")


def _json_age(kv: object, where: str, intervals: Intervals | None) -> int | None:
    if kv is None:
        return None
    if not isinstance(kv, dict):
        return damo_text.to_int(kv, f"{where}.age")
    if kv.get("aggr_intervals") is not None:
        return damo_text.to_int(kv["aggr_intervals"], f"{where}.age.aggr_intervals")
    if kv.get("usec") is not None and intervals is not None:
        return int(damo_text.to_us(kv["usec"], f"{where}.age.usec") / intervals.aggr_us)
    return None
