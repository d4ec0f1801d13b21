"""Run keys: ``suite/workload/config/NN``, the one parser of that text form.

A campaign with several kernels (``kernels:``) prefixes the kernel's name:
``kernel/suite/workload/config/NN`` (its runs live below ``runs/<kernel>/``);
campaigns without keep the four-part form and their paths.

The field patterns here are the single source: the Snakemake wildcard
constraints (:func:`wildcard_constraints`) are generated from them, and the
campaign, configuration and result schemas are tested against them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from damon_eval.errors import ConfigError

SUITE_PATTERN = r"[a-z0-9_]+"
WORKLOAD_PATTERN = r"[A-Za-z0-9_.-]+"
CONFIG_PATTERN = r"[a-z][a-z0-9_-]*"
KERNEL_PATTERN = r"[a-z][a-z0-9_]*"
"""A campaign's kernel name (``kernels:`` keys): identifier-like, lower case."""
REPEAT_DIGITS = 2
REPEAT_PATTERN = r"0[1-9]|[1-9][0-9]"
"""A run directory's repeat: ``01``..``99``."""
EXAMPLE = "synthetic/zigzag/rec/01"
KERNEL_EXAMPLE = "base/synthetic/zigzag/rec/01"

_FIELDS = {
    "suite": SUITE_PATTERN,
    "workload": WORKLOAD_PATTERN,
    "config": CONFIG_PATTERN,
}
# Parsing accepts an unpadded repeat ("3"); directories always use the padded form.
_PARSE_REPEAT = rf"[0-9]{{1,{REPEAT_DIGITS}}}"


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"^(?:{pattern})$")


_FIELD_RES = {name: _full(pattern) for name, pattern in _FIELDS.items()}


_KERNEL_RE = _full(KERNEL_PATTERN)


def wildcard_constraints() -> dict[str, str]:
    """Snakemake wildcard constraints for ``[{kernel}/]{suite}/{workload}/{config}/{repeat}``."""
    return {**_FIELDS, "repeat": REPEAT_PATTERN, "kernel": KERNEL_PATTERN}


def check_kernel_name(name: object) -> str:
    """A kernel name as ``kernels:`` keys and run keys need it, or a one-line error."""
    if not isinstance(name, str) or not _KERNEL_RE.match(name):
        raise ConfigError(
            f"kernel name {name!r} is not valid: expected {KERNEL_PATTERN!r} "
            "(lower-case letters, digits, _; e.g. base, patched)"
        )
    return name


@dataclass(frozen=True, slots=True, order=True)
class RunKey:
    """Identifies one run of a campaign."""

    suite: str
    workload: str
    config: str
    repeat: int
    kernel: str = ""  # a campaign's kernel name; "" without kernels:

    def __post_init__(self) -> None:
        for name, regex in _FIELD_RES.items():
            value = getattr(self, name)
            if not isinstance(value, str) or not regex.match(value):
                raise ConfigError(
                    f"run key {name} {value!r} is not valid: expected {_FIELDS[name]!r}"
                    f" (e.g. {EXAMPLE})"
                )
        if self.kernel != "":
            try:
                check_kernel_name(self.kernel)
            except ConfigError as exc:
                raise ConfigError(
                    f"run key kernel {str(exc).removeprefix('kernel name ')}"
                ) from None
        limit = 10**REPEAT_DIGITS - 1
        if isinstance(self.repeat, bool) or not isinstance(self.repeat, int):
            raise ConfigError(f"run key repeat {self.repeat!r} is not an integer")
        if not 1 <= self.repeat <= limit:
            raise ConfigError(f"run key repeat {self.repeat} is not in 1..{limit}")

    @classmethod
    def parse(cls, text: str) -> RunKey:
        """``[kernel/]suite/workload/config/repeat`` (repeat ``1``..``99``, padded or not)."""
        parts = text.split("/") if isinstance(text, str) else []
        if len(parts) not in (4, 5):
            raise ConfigError(
                f"run key {text!r}: expected SUITE/WORKLOAD/CONFIG/NN with 4 parts, e.g. {EXAMPLE}"
                f" (or KERNEL/SUITE/WORKLOAD/CONFIG/NN, e.g. {KERNEL_EXAMPLE})"
            )
        if len(parts) == 5 and not parts[0]:
            raise ConfigError(f"run key {text!r}: empty kernel name, e.g. {KERNEL_EXAMPLE}")
        kernel = parts.pop(0) if len(parts) == 5 else ""
        suite, workload, config, repeat = parts
        if not _full(_PARSE_REPEAT).match(repeat):
            raise ConfigError(
                f"run key {text!r}: repeat {repeat!r} is not a number 1..99, e.g. {EXAMPLE}"
            )
        try:
            return cls(suite, workload, config, int(repeat), kernel)
        except ConfigError as exc:
            raise ConfigError(f"run key {text!r}: {str(exc).removeprefix('run key ')}") from None

    @classmethod
    def of(cls, workload_id: str, config: str, repeat: int, kernel: str = "") -> RunKey:
        """The key of ``repeat`` of ``config`` on a ``suite/name`` workload id (and kernel)."""
        suite, slash, name = workload_id.partition("/")
        if not slash:
            raise ConfigError(
                f"workload {workload_id!r}: expected SUITE/NAME, e.g. synthetic/zigzag"
            )
        return cls(suite, name, config, repeat, kernel)

    @property
    def workload_id(self) -> str:
        return f"{self.suite}/{self.workload}"

    @property
    def relative_dir(self) -> str:
        """``[<kernel>/]<suite>/<workload>/<config>/<NN>``, the run's directory under ``runs/``."""
        cell = f"{self.suite}/{self.workload}/{self.config}/{self.repeat:0{REPEAT_DIGITS}d}"
        return f"{self.kernel}/{cell}" if self.kernel else cell

    def __str__(self) -> str:
        return self.relative_dir
