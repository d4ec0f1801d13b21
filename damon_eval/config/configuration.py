"""Run configurations: ``configs/configurations/<name>.yaml``, validated, with schemes resolved.

:func:`load_configuration` reads, parses and resolves the schemes once; the
run, its provenance and the DAMON controller use the stored forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damon_eval.damon.model import MonitoringAttrs
from damon_eval.damon.scheme_spec import SchemeSpec
from damon_eval.damon.schemes import ResolvedScheme, parse_schemes, resolve_schemes
from damon_eval.errors import ConfigError
from damon_eval.paths import configs_dir, resolve_config_path
from damon_eval.schema import load_yaml, validate


@dataclass(frozen=True, slots=True)
class RunConfiguration:
    """A validated configuration; ``settings`` has every default filled in.

    ``scheme_specs`` are the schemes as written, ``schemes`` the same resolved
    for the configuration's intervals (both empty without schemes).
    """

    name: str
    source: Path
    settings: dict[str, Any]
    scheme_specs: tuple[SchemeSpec, ...] = field(default=(), compare=False)
    schemes: tuple[ResolvedScheme, ...] = field(default=(), compare=False)

    @property
    def thp(self) -> str:
        return self.settings["thp"]

    @property
    def swap(self) -> dict | None:
        return self.settings["swap"]

    @property
    def damon(self) -> dict | None:
        return self.settings["damon"]

    @property
    def damon_module(self) -> dict | None:
        return self.settings["damon_module"]

    @property
    def records(self) -> bool:
        return bool(self.damon and self.damon["record"])

    def schemes_text(self) -> tuple[str, str] | None:
        """``(text, source name)`` of the configuration's schemes, or None.

        ``schemes`` is a file under ``configs/`` when such a file exists,
        otherwise inline text in the seed's format.
        """
        if not self.damon or not self.damon["schemes"]:
            return None
        value = self.damon["schemes"]
        candidate = configs_dir() / value
        if "\n" not in value and candidate.is_file():
            return candidate.read_text(), str(candidate)
        if "\n" not in value and value.endswith((".damos", ".json", ".yaml")):
            raise ConfigError(
                f"{self.source}: damon.schemes: no such scheme file {value!r} under {configs_dir()}"
            )
        return value, f"{self.source}: damon.schemes"

    def monitoring_attrs(self) -> MonitoringAttrs | None:
        return MonitoringAttrs(**self.damon["attrs"]) if self.damon else None

    def describe(self) -> dict[str, Any]:
        """Provenance: the settings plus every scheme's human and raw values."""
        return {
            "name": self.name,
            "source": str(self.source),
            "settings": self.settings,
            "schemes": [scheme.to_dict() for scheme in self.schemes],
        }


def load_configuration(name_or_path: str | Path) -> RunConfiguration:
    """Load ``configs/configurations/<name>.yaml`` (or a path) and validate it."""
    path = resolve_config_path(
        name_or_path if str(name_or_path).endswith(".yaml") else f"{name_or_path}.yaml",
        "configurations",
    )
    data = load_yaml(path)
    settings = validate(data, "configuration", path)
    if settings["name"] != path.stem:
        raise ConfigError(
            f"{path}: name: {settings['name']!r} must equal the file name {path.stem!r}"
        )
    damon = settings["damon"]
    if damon:
        ops, target = damon["operations"], damon["target"]
        if ops == "paddr" and target != "system_ram":
            raise ConfigError(f"{path}: damon.target: paddr monitors 'system_ram', not {target!r}")
        if ops in ("vaddr", "fvaddr") and target != "workload":
            raise ConfigError(f"{path}: damon.target: {ops} monitors 'workload', not {target!r}")
        attrs = damon["attrs"]
        if attrs["min_nr_regions"] > attrs["max_nr_regions"]:
            raise ConfigError(f"{path}: damon.attrs: min_nr_regions > max_nr_regions")
        if not attrs["sample_us"] <= attrs["aggr_us"] <= attrs["update_us"]:
            raise ConfigError(
                f"{path}: damon.attrs: need sample_us <= aggr_us <= update_us, got "
                f"{attrs['sample_us']}, {attrs['aggr_us']}, {attrs['update_us']}"
            )
    if damon and settings["damon_module"]:
        raise ConfigError(f"{path}: use either damon or damon_module, not both")
    configuration = RunConfiguration(settings["name"], path, settings)
    # Scheme errors surface now, before any guest boots.
    found = configuration.schemes_text()
    if found is None:
        return configuration
    specs = parse_schemes(*found)
    resolved = resolve_schemes(specs, configuration.monitoring_attrs())
    return RunConfiguration(settings["name"], path, settings, specs, resolved)
