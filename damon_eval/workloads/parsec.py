"""``parsec3/*`` and ``splash2x/*``: a user-provided PARSEC 3.0, built and run by parsecmgmt.

The project contains no PARSEC code.  The user points the config at a PARSEC
3.0 tree (with ``bin/parsecmgmt``) or its tarball::

    parsec: {path: /srv/parsec-3.0, input: native}

It is put into the guest (``guest_root``), each package is built there with
PARSEC's own ``parsecmgmt -a build -p <pkg>``, and runs use::

    parsecmgmt -a run -p <pkg> -i <input> -n <threads> -s "<de-agent> hold --"

``parsecmgmt`` runs the benchmark binary prefixed by the ``-s`` command, so
``de-agent hold`` stops the benchmark binary itself at exec and DAMON targets
it (not parsecmgmt, not a shell).
"""

from __future__ import annotations

import shlex
import tarfile
from dataclasses import dataclass

from damon_eval.measure.agent import hold_prefix
from damon_eval.workloads.base import (
    PreparePlan,
    RunParams,
    RunPlan,
    Upload,
    Workload,
    WorkloadContext,
    WorkloadUnavailable,
    check_input_size,
)

PARSEC_HOW_TO = (
    "set 'parsec: {path: /srv/parsec-3.0, input: native}' in the campaign config: a PARSEC 3.0 "
    "tree with bin/parsecmgmt, or its tarball parsec-3.0.tar.gz (for native inputs, unpack "
    "parsec-3.0-input-native.tar.gz into the tree)"
)

# name: (group directory, binary name = the process DAMON targets)
PARSEC3_PACKAGES: dict[str, tuple[str, str]] = {
    "blackscholes": ("apps", "blackscholes"),
    "bodytrack": ("apps", "bodytrack"),
    "canneal": ("kernels", "canneal"),
    "dedup": ("kernels", "dedup"),
    "facesim": ("apps", "facesim"),
    "ferret": ("apps", "ferret"),
    "fluidanimate": ("apps", "fluidanimate"),
    "freqmine": ("apps", "freqmine"),
    "raytrace": ("apps", "rtview"),
    "streamcluster": ("kernels", "streamcluster"),
    "swaptions": ("apps", "swaptions"),
    "vips": ("apps", "vips"),
    "x264": ("apps", "x264"),
}
SPLASH2X_PACKAGES: dict[str, tuple[str, str]] = {
    "barnes": ("apps", "BARNES"),
    "fft": ("kernels", "FFT"),
    "lu_cb": ("kernels", "LU"),
    "lu_ncb": ("kernels", "LU"),
    "ocean_cp": ("apps", "OCEAN"),
    "ocean_ncp": ("apps", "OCEAN"),
    "radiosity": ("apps", "RADIOSITY"),
    "radix": ("kernels", "RADIX"),
    "raytrace": ("apps", "RAYTRACE"),
    "volrend": ("apps", "VOLREND"),
    "water_nsquared": ("apps", "WATER-NSQUARED"),
    "water_spatial": ("apps", "WATER-SPATIAL"),
}
# These take their inputs as command-line parameters: no input tarball to check.
PARAMETER_INPUT_PACKAGES = frozenset(
    {
        "splash2x.fft",
        "splash2x.lu_cb",
        "splash2x.lu_ncb",
        "splash2x.radix",
        "splash2x.ocean_cp",
        "splash2x.ocean_ncp",
        "splash2x.radiosity",
        "streamcluster",
        "swaptions",
    }
)
GUEST_PARSEC_TARBALL = "/var/tmp/damon-eval/parsec.tar"


@dataclass(frozen=True, slots=True)
class ParsecWorkload(Workload):
    suite: str
    name: str
    group: str
    binary: str
    description: str = ""

    @property
    def package(self) -> str:
        """The name parsecmgmt knows: ``blackscholes``, ``splash2x.fft``."""
        return self.name if self.suite == "parsec3" else f"splash2x.{self.name}"

    @property
    def relative_dir(self) -> str:
        base = "pkgs" if self.suite == "parsec3" else "ext/splash2x"
        return f"{base}/{self.group}/{self.name}"

    def available(self, context: WorkloadContext) -> tuple[bool, str]:
        source = context.parsec
        if source is None:
            return False, "PARSEC 3.0 is not provided (config key 'parsec')"
        if not source.path.exists():
            return False, f"PARSEC path {source.path} does not exist"
        if not source.is_tree:
            if not tarfile.is_tarfile(source.path):
                return False, f"PARSEC path {source.path} is neither a directory nor a tarball"
            return True, f"from tarball {source.path.name} (contents checked in the guest)"
        if not (source.path / "bin" / "parsecmgmt").is_file():
            return False, f"{source.path} has no bin/parsecmgmt (not a PARSEC 3.0 tree)"
        package_dir = source.path / self.relative_dir
        if not package_dir.is_dir():
            return False, f"{source.path} lacks {self.relative_dir}"
        if self.package not in PARAMETER_INPUT_PACKAGES:
            input_tar = package_dir / "inputs" / f"input_{source.input_size}.tar"
            if not input_tar.is_file():
                return False, (
                    f"{source.path} lacks {self.relative_dir}/inputs/{input_tar.name}: unpack "
                    f"parsec-3.0-input-{source.input_size}.tar.gz into the tree"
                )
        return True, f"PARSEC tree {source.path}, input {source.input_size}"

    def version(self, context: WorkloadContext) -> str:
        source = context.parsec
        if source is None:
            return "parsec:unprovided"
        if source.is_tree:
            version_file = source.path / "version"
            version = version_file.read_text().strip() if version_file.is_file() else "unknown"
            return f"parsec-{version}:{self.package}"
        stat = source.path.stat()
        return f"parsec-tarball:{source.path.name}:{stat.st_size}:{self.package}"

    def _root(self, context: WorkloadContext) -> str:
        assert context.parsec is not None
        return context.parsec.guest_root

    def prepare(self, context: WorkloadContext, params: RunParams) -> PreparePlan:
        self._require(context)
        assert context.parsec is not None
        root = shlex.quote(self._root(context))
        if context.parsec.is_tree:
            uploads = (Upload(context.parsec.path, self._root(context)),)
            unpack: tuple[str, ...] = ()
        else:
            uploads = (Upload(context.parsec.path, GUEST_PARSEC_TARBALL),)
            unpack = (
                f"if [ ! -x {root}/bin/parsecmgmt ]; then mkdir -p {root} && "
                f"tar -xf {GUEST_PARSEC_TARBALL} -C {root} --strip-components=1; fi",
            )
        return PreparePlan(
            uploads=uploads,
            commands=(
                *unpack,
                f"cd {root} && PARSECDIR={root} ./bin/parsecmgmt -a build -p {self.package}",
            ),
            stamp=f"{self._root(context)}/.damon-eval-built/{self.package}",
        )

    def run_plan(self, context: WorkloadContext, params: RunParams) -> RunPlan:
        self._require(context)
        assert context.parsec is not None
        input_size = params.input_size or context.parsec.input_size
        check_input_size(input_size)
        root = self._root(context)
        threads = params.threads or context.parsec.threads
        return RunPlan(
            command=(
                f"{root}/bin/parsecmgmt",
                *("-a", "run", "-p", self.package, "-i", input_size, "-n", str(threads)),
                *("-s", hold_prefix(params.agent_path)),
            ),
            hold="child",
            target=self.binary,
            cwd=root,
        )

    def _require(self, context: WorkloadContext) -> None:
        ok, reason = self.available(context)
        if not ok:
            raise WorkloadUnavailable(f"{self.id} is not available: {reason}")


def parsec_workloads() -> list[Workload]:
    workloads: list[Workload] = [
        ParsecWorkload("parsec3", name, group, binary, f"PARSEC 3.0 {name}")
        for name, (group, binary) in PARSEC3_PACKAGES.items()
    ]
    workloads += [
        ParsecWorkload("splash2x", name, group, binary, f"SPLASH-2X {name} (PARSEC 3.0)")
        for name, (group, binary) in SPLASH2X_PACKAGES.items()
    ]
    return workloads
