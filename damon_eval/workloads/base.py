"""What a workload is: how to prepare it in a guest, how to run it, what DAMON targets.

A :class:`Workload` never touches a guest itself.  It describes

* a :class:`PreparePlan`: files to upload and shell commands to run in the
  guest once (builds, input generation), guarded by a stamp file so a
  prepared guest image is not prepared again;
* a :class:`RunPlan`: the command the agent launches, and whether the process
  DAMON targets is that command (``hold="exec"``) or a benchmark it starts
  through ``de-agent hold`` (``hold="child"``, e.g. under ``parsecmgmt``);
* ``available(context)``: whether it can run with what the user provided.

The guest layer executes plans; :mod:`damon_eval.measure` wraps the run
command in a ``de-agent run`` invocation (:meth:`Workload.agent_invocation`).
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damon_eval.agent.build import GUEST_AGENT_PATH
from damon_eval.agent.protocol import AgentInvocation, HoldMode
from damon_eval.errors import ConfigError
from damon_eval.paths import GUEST_PREFIX

GUEST_WORKLOAD_DIR = f"{GUEST_PREFIX}/workloads"
GUEST_SRC_DIR = f"{GUEST_PREFIX}/src"
GUEST_BIN_DIR = f"{GUEST_PREFIX}/bin"
GUEST_INPUT_DIR = "/var/tmp/damon-eval/inputs"
GUEST_SCRATCH_DIR = "/var/tmp/damon-eval/scratch"


class WorkloadUnavailable(ConfigError):
    """A workload was asked for that cannot run with what was provided."""


@dataclass(frozen=True, slots=True)
class Upload:
    """A host file put into the guest.  ``extract``: a tarball unpacked into ``dest``."""

    source: Path
    dest: str
    extract: bool = False


@dataclass(frozen=True, slots=True)
class PreparePlan:
    """Uploads, then ``commands`` (POSIX sh, run as root, in order) unless ``stamp`` exists."""

    uploads: tuple[Upload, ...] = ()
    commands: tuple[str, ...] = ()
    stamp: str | None = None

    def script(self) -> str:
        """The commands as one script that skips everything when the stamp exists."""
        body = "\n".join(self.commands)
        if not self.stamp:
            return f"set -e\n{body}\n"
        stamp = shlex.quote(self.stamp)
        return (
            f"set -e\nif [ -e {stamp} ]; then exit 0; fi\n{body}\n"
            f"mkdir -p {shlex.quote(str(Path(self.stamp).parent))}\ntouch {stamp}\n"
        )


@dataclass(frozen=True, slots=True)
class RunParams:
    """Knobs of one run.

    ``scale`` multiplies the amount of work (1.0 = the default size, 20-120 s
    under KVM; ~0.05 for quick TCG runs).  ``input_size`` is PARSEC's input
    set (``native`` for the paper numbers; ``simsmall``... for quick runs).
    """

    out_dir: str
    scale: float = 1.0
    threads: int | None = None  # None: the workload's default (PARSEC: parsec.threads, else 1)
    input_size: str | None = None
    agent_path: str = GUEST_AGENT_PATH

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ConfigError(f"scale must be > 0, not {self.scale}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, not {self.threads}")

    @property
    def nr_threads(self) -> int:
        return self.threads or 1


@dataclass(frozen=True, slots=True)
class RunPlan:
    command: tuple[str, ...]
    hold: HoldMode
    target: str  # name of the process DAMON targets (its comm)
    cwd: str | None = None
    expected_runtime_s: float | None = None  # at this scale under KVM, for timeouts
    # True: a fixed amount of work, so it runs 10-50x longer under TCG than under KVM;
    # False: phases of fixed duration (accgen), the same wall time anywhere
    work_based: bool = True


@dataclass(frozen=True, slots=True)
class ParsecSource:
    """A PARSEC 3.0 installation the user provides: a tree or a tarball."""

    path: Path
    input_size: str = "native"
    threads: int = 1
    guest_root: str = "/opt/parsec-3.0"
    inputs: Mapping[str, str] = field(default_factory=dict)  # workload id -> input size
    build: str = "auto"  # where parsecmgmt -a build runs: host (image chroot), guest, auto
    # The campaign's PARSEC packages and guest image spec: what keys a host build.
    campaign_packages: tuple[str, ...] = ()
    image_spec: str | None = None
    image_kernel: Any = None  # the campaign's guest.kernel, if any

    @property
    def is_tree(self) -> bool:
        return self.path.is_dir()


@dataclass(frozen=True, slots=True)
class WorkloadContext:
    """What the user provided and what the guest has.

    ``guest_packages`` is None when the guest image's package list is not
    known; workloads then assume the standard damon-eval image, which
    includes :data:`damon_eval.workloads.REQUIRED_GUEST_PACKAGES`.
    """

    parsec: ParsecSource | None = None
    guest_packages: frozenset[str] | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> WorkloadContext:
        """From a campaign config: ``parsec: {path, input, threads}``, ``guest_packages``.

        ``parsec.path: null`` (the campaign default) means PARSEC is not provided.
        """
        config = config or {}
        parsec = None
        raw = config.get("parsec")
        if isinstance(raw, str):
            raw = {"path": raw}
        if raw is not None and (not isinstance(raw, Mapping) or "path" not in raw):
            raise ConfigError(
                f"config key parsec must be a mapping with a path, e.g. "
                f"'parsec: {{path: /srv/parsec-3.0, input: native}}'; got {raw!r}"
            )
        if raw is not None:
            valid = ("path", "input", "inputs", "threads", "guest_root", "build", "build_only")
            unknown = set(raw) - set(valid)
            if unknown:
                raise ConfigError(
                    f"unknown parsec key(s) {sorted(unknown)}; valid: {', '.join(valid)}"
                )
            build = str(raw.get("build", "auto"))
            if build not in ("auto", "host", "guest"):
                raise ConfigError(f"parsec.build {build!r} is not one of auto, host, guest")
            input_size = str(raw.get("input", "native"))
            check_input_size(input_size)
            inputs = dict(raw.get("inputs") or {})
            for workload_id, size in inputs.items():
                if not str(workload_id).startswith(("parsec3/", "splash2x/")):
                    raise ConfigError(
                        f"parsec.inputs key {workload_id!r} is not a parsec3/ or splash2x/ workload"
                    )
                check_input_size(str(size))
            threads = raw.get("threads", 1)
            if not isinstance(threads, int) or threads < 1:
                raise ConfigError(f"parsec threads must be an integer >= 1, not {threads!r}")
            build_only = check_build_only(raw.get("build_only") or [], build)
        if raw is not None and raw.get("path"):
            parsec = ParsecSource(
                path=Path(str(raw["path"])).expanduser(),
                input_size=input_size,
                threads=threads,
                guest_root=str(raw.get("guest_root", "/opt/parsec-3.0")),
                inputs={str(k): str(v) for k, v in inputs.items()},
                build=build,
                # Built packages: the campaign's PARSEC workloads, then those only built.
                campaign_packages=tuple(
                    dict.fromkeys(
                        [
                            str(w)
                            for w in config.get("workloads") or ()
                            if str(w).startswith(("parsec3/", "splash2x/"))
                        ]
                        + [str(w) for w in build_only]
                    )
                ),
                image_spec=(config.get("guest") or {}).get("spec"),
                image_kernel=(config.get("guest") or {}).get("kernel"),
            )
        packages = config.get("guest_packages")
        spec_name = (config.get("guest") or {}).get("spec")
        if packages is None and spec_name:
            packages = _spec_packages(str(spec_name))
        return cls(
            parsec=parsec,
            guest_packages=frozenset(map(str, packages)) if packages is not None else None,
        )


def check_build_only(build_only: Any, build: str) -> list:
    """``parsec.build_only``: a list of parsec3/ or splash2x/ ids, with a host build."""
    if not isinstance(build_only, list | tuple):
        raise ConfigError(
            f"parsec.build_only must be a list of parsec3/ or splash2x/ workloads, "
            f"not {build_only!r}"
        )
    for workload_id in build_only:
        if not str(workload_id).startswith(("parsec3/", "splash2x/")):
            raise ConfigError(
                f"parsec.build_only entry {workload_id!r} is not a parsec3/ or splash2x/ workload"
            )
    if build_only and build == "guest":
        # A guest build prepares each run's own package; nothing builds the others.
        raise ConfigError(
            "parsec.build_only needs parsec.build host or auto (a build on the host); "
            "with parsec.build guest only the packages of the campaign's runs build"
        )
    return list(build_only)


def _spec_packages(spec_name: str) -> tuple[str, ...]:
    """The Debian packages a campaign's guest image spec installs."""
    from damon_eval.guest.spec import load_spec
    from damon_eval.paths import resolve_config_path

    return load_spec(resolve_config_path(spec_name)).all_packages()


PARSEC_INPUT_SIZES: tuple[str, ...] = (
    "test",
    "simdev",
    "simsmall",
    "simmedium",
    "simlarge",
    "native",
)


def check_input_size(input_size: str) -> None:
    if input_size not in PARSEC_INPUT_SIZES:
        raise ConfigError(
            f"PARSEC input {input_size!r} is not one of {', '.join(PARSEC_INPUT_SIZES)}"
        )


def files_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


class Workload:
    """Base of every workload definition; subclasses fill the hooks."""

    # set by each subclass (dataclass fields)
    suite: str
    name: str
    description: str

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"

    def available(self, context: WorkloadContext) -> tuple[bool, str]:
        raise NotImplementedError

    def version(self, context: WorkloadContext) -> str:
        """Provenance known on the host (hashes of shipped files, PARSEC version)."""
        raise NotImplementedError

    def version_probe(self) -> str | None:
        """A guest shell command printing versions known only there (package versions)."""
        return None

    def prepare(self, context: WorkloadContext, params: RunParams) -> PreparePlan:
        raise NotImplementedError

    def build_check(self, context: WorkloadContext) -> str | None:
        """A guest sh command run before the agent starts: non-zero (its output says why)
        when the preparation could not build this workload (a ``build`` failure)."""
        return None

    def build_provenance(self, context: WorkloadContext) -> dict | None:
        """How the guest built this workload, when the harness builds it with a
        configuration and patches of its own (PARSEC); None otherwise."""
        return None

    def run_plan(self, context: WorkloadContext, params: RunParams) -> RunPlan:
        raise NotImplementedError

    def agent_invocation(
        self, context: WorkloadContext, params: RunParams, **agent_options: Any
    ) -> AgentInvocation:
        """The ``de-agent run`` command for this workload (options: see AgentInvocation)."""
        plan = self.run_plan(context, params)
        return AgentInvocation(
            out_dir=params.out_dir,
            command=plan.command,
            hold=plan.hold,
            cwd=plan.cwd,
            agent_path=params.agent_path,
            **agent_options,
        )
