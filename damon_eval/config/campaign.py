"""Campaigns: the matrix of runs a pipeline executes, in a recorded order.

A campaign is validated once, with its configurations loaded (schemes parsed
and resolved): a run and the Snakefile take them from the :class:`Campaign`
instead of loading them again.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damon_eval.config.configuration import RunConfiguration, load_configuration
from damon_eval.config.repeats import auto_repeats_from_settings
from damon_eval.config.runkey import RunKey, check_kernel_name
from damon_eval.errors import ConfigError
from damon_eval.paths import configs_dir, resolve_config_path
from damon_eval.schema import load_yaml, validate


@dataclass(frozen=True, slots=True)
class Campaign:
    name: str
    source: Path
    settings: dict[str, Any]
    configurations: Mapping[str, RunConfiguration] = field(default_factory=dict, compare=False)

    @property
    def workloads(self) -> list[str]:
        return list(self.settings["workloads"])

    @property
    def configs(self) -> list[str]:
        return list(self.settings["configs"])

    @property
    def kernels(self) -> dict[str, Any]:
        """``kernels:`` (name -> kernel value), in the campaign's order; empty without."""
        return dict(self.settings.get("kernels") or {})

    @property
    def kernel_names(self) -> list[str]:
        """The kernel names of the run matrix: ``[""]`` (one unnamed kernel) without kernels:."""
        return list(self.kernels) or [""]

    @property
    def base_kernel(self) -> str | None:
        """The kernel the others are compared against: the first of ``kernels:``."""
        return next(iter(self.kernels), None)

    def kernel_value(self, name: str) -> Any:
        """The ``kernel:`` value a run of kernel ``name`` boots (None: the image spec's)."""
        if not name:
            if self.kernels:
                raise ConfigError(
                    f"campaign {self.name} has kernels ({', '.join(self.kernels)}): "
                    "a run key needs one, e.g. base/synthetic/zigzag/rec/01"
                )
            return self.settings["guest"].get("kernel")
        if name not in self.kernels:
            raise ConfigError(
                f"kernel {name!r} is not in campaign {self.name}: "
                f"{', '.join(self.kernels) or 'it has no kernels:'}"
            )
        return self.kernels[name]

    @property
    def repeats(self) -> int:
        """Repeats planned up front: all of them, or the first round of ``repeats: auto``."""
        auto = self.auto_repeats
        return auto.min_repeats if auto else int(self.settings["repeats"])

    @property
    def auto_repeats(self):
        """The stopping rule (:class:`~damon_eval.config.repeats.AutoRepeats`) of
        ``repeats: auto``, or None."""
        return auto_repeats_from_settings(self.settings, self.source)

    def runs(self) -> list[RunKey]:
        """Every run, in execution order.

        Interleaved (damon-tests' order): repeat 1 of every workload and
        configuration, then repeat 2, and so on, so slow drifts of the host
        spread over all cells instead of biasing one; with ``kernels:`` each
        configuration runs on every kernel in turn, so the two sides of an A/B
        comparison run next to each other.  Shuffled: the same runs in a
        random order drawn from ``shuffle_seed``.
        """
        ordered = []
        for repeat in range(1, self.repeats + 1):
            for workload in self.workloads:
                for config in self.configs:
                    for kernel in self.kernel_names:
                        ordered.append(RunKey.of(workload, config, repeat, kernel))
        if self.settings["order"] == "shuffled":
            random.Random(self.settings["shuffle_seed"]).shuffle(ordered)
        return ordered

    def configuration(self, name: str) -> RunConfiguration:
        """One of the campaign's configurations, as loaded when it was validated."""
        try:
            return self.configurations[name]
        except KeyError:
            raise ConfigError(
                f"configuration {name!r} is not in campaign {self.name}: {', '.join(self.configs)}"
            ) from None

    def unavailable(self) -> list[tuple[str, str]]:
        """(workload, reason) for every workload that cannot run here."""
        from damon_eval.workloads import get_workload
        from damon_eval.workloads.base import WorkloadContext

        context = WorkloadContext.from_config(self.settings)
        reasons = []
        for workload_id in self.workloads:
            ok, reason = get_workload(workload_id).available(context)
            if not ok:
                reasons.append((workload_id, reason))
        return reasons

    def priority(self, key: RunKey) -> int:
        """Scheduler priority: earlier runs in the order get higher numbers."""
        order = self.runs()
        auto = self.auto_repeats
        if auto and self.repeats < key.repeat <= auto.max_repeats:
            # a later round of repeats: auto; the cells keep the first round's order
            cells = [(k.suite, k.workload, k.config) for k in order if k.repeat == 1]
            cell = (key.suite, key.workload, key.config)
            if cell in cells:
                return len(cells) - cells.index(cell)
        try:
            return len(order) - order.index(key)
        except ValueError as exc:
            raise ConfigError(
                f"run {key.relative_dir} is not part of campaign {self.name}"
            ) from exc


def campaign_from_dict(data: Any, source: str | Path, overrides: dict | None = None) -> Campaign:
    """Validate a campaign mapping (plus Snakemake ``--config`` overrides)."""
    merged = dict(data or {})
    merged.update(overrides or {})
    settings = validate(merged, "campaign", source)
    known = set(available_configuration_names())
    unknown = [c for c in settings["configs"] if c not in known]
    if unknown:
        raise ConfigError(
            f"{source}: configs: unknown configuration {unknown[0]!r}; "
            f"valid: {', '.join(sorted(known))} (files in {configs_dir() / 'configurations'})"
        )
    # Every configuration must load (schema, schemes) and every workload id must
    # exist before anything runs.  Availability (PARSEC provided?) is checked by
    # `damon-eval campaign check`, the first job of a pipeline, so dry runs plan
    # campaigns whose inputs are not here.
    from damon_eval.workloads import get_workload
    from damon_eval.workloads.base import check_build_only

    configurations = {name: load_configuration(name) for name in settings["configs"]}
    for workload_id in [*settings["workloads"], *settings["workload_scales"]]:
        try:
            get_workload(workload_id)
        except ConfigError as exc:
            raise ConfigError(f"{source}: workloads: {exc}") from None
    parsec = settings.get("parsec") or {}
    for workload_id in parsec.get("build_only") or ():
        try:
            get_workload(workload_id)
        except ConfigError as exc:
            raise ConfigError(f"{source}: parsec.build_only: {exc}") from None
    try:
        check_build_only(parsec.get("build_only") or [], parsec.get("build", "auto"))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    _check_kernels(settings, Path(source))
    campaign = Campaign(settings["campaign"], Path(source), settings, configurations)
    campaign.auto_repeats  # noqa: B018 -- validates repeats: auto's rule now
    return campaign


def _check_kernels(settings: dict, source: Path) -> None:
    """Every kernel of ``kernels:`` resolves (paths exist, forms known), before any boot."""
    from damon_eval.guest.kernels import resolve_kernel

    kernels = settings.get("kernels")
    if not kernels:
        return
    for name in kernels:
        try:
            check_kernel_name(name)
        except ConfigError as exc:
            raise ConfigError(f"{source}: kernels: {exc}") from None
    if settings["guest"].get("kernel") is not None:
        raise ConfigError(
            f"{source}: guest.kernel {settings['guest']['kernel']!r} is not supported with "
            "kernels:; name that kernel as one of kernels: instead"
        )
    # Not supported yet: repeats: auto decides per (workload, config) cell, not per
    # kernel, and PARSEC is built once per image while each kernel has its own image.
    if settings.get("repeats") == "auto":
        raise ConfigError(
            f"{source}: repeats: 'auto' is not supported with kernels:; "
            "give a whole number of repeats, e.g. repeats: 5"
        )
    parsec = [w for w in settings["workloads"] if w.startswith(("parsec3/", "splash2x/"))]
    if parsec:
        raise ConfigError(
            f"{source}: workloads: {parsec[0]!r} is not supported with kernels: (PARSEC is "
            "built per image, not per kernel); valid there: synthetic/* and debian/* workloads"
        )
    for name, value in kernels.items():
        try:
            resolve_kernel(value, source.parent)
        except ConfigError as exc:
            raise ConfigError(f"{source}: kernels.{name}: {exc}") from None


def load_campaign_mapping(path: str | Path) -> dict:
    """The raw mapping of a campaign file (validated later, with overrides)."""
    data = load_yaml(resolve_config_path(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a campaign must be a mapping of keys to values")
    return data


def load_campaign(path: str | Path, overrides: dict | None = None) -> Campaign:
    path = resolve_config_path(path)
    return campaign_from_dict(load_campaign_mapping(path), path, overrides)


def available_configuration_names() -> list[str]:
    directory = configs_dir() / "configurations"
    return sorted(p.stem for p in directory.glob("*.yaml"))
