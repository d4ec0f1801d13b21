"""``parsec3/*`` and ``splash2x/*``: a user-provided PARSEC 3.0, built and run by parsecmgmt.

The project contains no PARSEC code.  The user points the config at a PARSEC
3.0 tree (with ``bin/parsecmgmt``) or its tarball::

    parsec: {path: /srv/parsec-3.0, input: native}

It is put into the guest (``guest_root``), each package is built there with
PARSEC's own ``parsecmgmt -a build -p <pkg>``, and runs use::

    parsecmgmt -a run -p <pkg> -i <input> -n <threads> -s "<agent> hold --target-comm <bin> --"

``parsecmgmt`` runs the package's ``run_exec`` prefixed by the ``-s`` command:
the benchmark binary for parsec3, SPLASH-2X's ``run.sh`` shell script (which
starts the binary) for splash2x.  ``de-agent hold --target-comm <binary>``
holds the process that execs as the binary, so DAMON targets it (not
parsecmgmt, not a shell) and the runtime is its own.

The build (configuration, patches, the host build) is
:mod:`damon_eval.workloads.parsec_build`'s.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from damon_eval.agent.protocol import hold_prefix
from damon_eval.workloads.base import (
    PreparePlan,
    RunParams,
    RunPlan,
    Upload,
    Workload,
    WorkloadContext,
    WorkloadUnavailable,
    check_input_size,
    files_digest,
)
from damon_eval.workloads.parsec_build import (
    BLDCONF_PATH,
    BUILD_CONFIG,
    BUILD_STATE_DIR,
    GUEST_UPLOAD_DIR,
    PARSEC3_PACKAGES,
    PARSEC_BUILD_PACKAGES,
    SPLASH2X_PACKAGES,
    build_command,
    build_mode,
    build_provenance,
    host_build_key_for,
    install_build_config_command,
    package_name,
    package_patches,
    package_relative_dir,
    require_host_build,
)
from damon_eval.workloads.parsec_source import (
    TARBALL_SUFFIXES,
    source_digest,
    tarball_members,
    tarball_suffix,
    tree_relative_members,
    unpack_command,
    upload_archive,
)

PARSEC_HOW_TO = (
    "set 'parsec: {path: /srv/parsec-3.0, input: native}' in the campaign config: a PARSEC 3.0 "
    "tree with bin/parsecmgmt, or its tarball parsec-3.0.tar.gz (for native inputs, unpack "
    "parsec-3.0-input-native.tar.gz into the tree)"
)

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
# The PARSEC 3.0 distribution archive each input size's inputs/input_<size>.tar comes from.
INPUT_ARCHIVES = {
    "test": "parsec-3.0-core.tar.gz",
    "simdev": "parsec-3.0-core.tar.gz",
    "simsmall": "parsec-3.0-input-sim.tar.gz (simsmall, simmedium, simlarge)",
    "simmedium": "parsec-3.0-input-sim.tar.gz (simsmall, simmedium, simlarge)",
    "simlarge": "parsec-3.0-input-sim.tar.gz (simsmall, simmedium, simlarge)",
    "native": "parsec-3.0-input-native.tar.gz",
}


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
        return package_name(self.suite, self.name)

    @property
    def relative_dir(self) -> str:
        return package_relative_dir(self.suite, self.group, self.name)

    def package_dir(self, context: WorkloadContext) -> str:
        return f"{self._root(context)}/{self.relative_dir}"

    def input_size(self, context: WorkloadContext, params: RunParams | None = None) -> str:
        """Per-workload ``parsec.inputs`` first, then the run's, then ``parsec.input``."""
        assert context.parsec is not None
        size = context.parsec.inputs.get(self.id) or (params and params.input_size)
        return size or context.parsec.input_size

    def available(self, context: WorkloadContext) -> tuple[bool, str]:
        source = context.parsec
        if source is None:
            return False, "PARSEC 3.0 is not provided (config key 'parsec')"
        if not source.path.exists():
            return False, f"PARSEC path {source.path} does not exist"
        if context.guest_packages is not None:
            missing = [p for p in PARSEC_BUILD_PACKAGES if p not in context.guest_packages]
            if missing:
                return False, (
                    f"the guest image spec lacks the PARSEC build packages {' '.join(missing)} "
                    f"(use guest.spec: guest/parsec.yaml)"
                )
        if source.is_tree:
            if not (source.path / "bin" / "parsecmgmt").is_file():
                return False, f"{source.path} has no bin/parsecmgmt (not a PARSEC 3.0 tree)"
            members = None
        else:
            if tarball_suffix(source.path) is None:
                return False, (
                    f"PARSEC path {source.path} is neither a directory nor a tarball "
                    f"({', '.join(TARBALL_SUFFIXES)})"
                )
            members = tree_relative_members(tarball_members(source.path))
            if members is None:
                return False, (
                    f"tarball {source.path} has no bin/parsecmgmt at its top or in one top "
                    f"directory (not a PARSEC 3.0 tarball)"
                )
        has = (
            (lambda rel: (source.path / rel).exists())
            if members is None
            else (lambda rel, names=frozenset(members): rel in names)
        )
        if not has(f"{self.relative_dir}/parsec/gcc.bldconf"):
            return False, f"{source.path} lacks {self.relative_dir}"
        size = self.input_size(context)
        if self.package not in PARAMETER_INPUT_PACKAGES:
            input_tar = f"{self.relative_dir}/inputs/input_{size}.tar"
            if not has(input_tar):
                return False, (
                    f"{source.path} lacks {input_tar} (input {size!r}; it comes from "
                    f"{INPUT_ARCHIVES[size]}); choose another size with "
                    f"parsec.inputs: {{{self.id}: <size>}}"
                )
        return True, f"PARSEC {source.path}, input {size}"

    def version(self, context: WorkloadContext) -> str:
        source = context.parsec
        if source is None:
            return "parsec:unprovided"
        patches = ",".join(p.name for p in package_patches(self.package)) or "none"
        built = (
            f":built:host:{host_build_key_for(source)}"
            if build_mode(source) == "host"
            else ":built:guest"
        )
        return (
            f"parsec-source:{source_digest(source.path)}:{self.package}:"
            f"bldconf:{BUILD_CONFIG}:{files_digest(BLDCONF_PATH)}:patches:{patches}{built}"
        )

    def _root(self, context: WorkloadContext) -> str:
        assert context.parsec is not None
        return context.parsec.guest_root

    def prepare(self, context: WorkloadContext, params: RunParams) -> PreparePlan:
        self._require(context)
        assert context.parsec is not None
        root = self._root(context)
        if build_mode(context.parsec) == "host":
            built = require_host_build(context.parsec)
            remote = f"{GUEST_UPLOAD_DIR}/parsec-built-{built.key}.tar.zst"
            return PreparePlan(
                uploads=(Upload(built.archive, remote),),
                commands=(unpack_command(remote, root, f"built-{built.key}"),),
                stamp=f"{root}/.damon-eval-built/{self.package}-{built.key}",
            )
        digest = source_digest(context.parsec.path)
        archive = upload_archive(context.parsec.path)
        remote_archive = f"{GUEST_UPLOAD_DIR}/parsec-{digest}{tarball_suffix(archive) or '.tar'}"
        patches = package_patches(self.package)
        uploads = (
            Upload(archive, remote_archive),
            Upload(BLDCONF_PATH, f"{GUEST_UPLOAD_DIR}/{BUILD_CONFIG}.bldconf"),
            *(Upload(p, f"{GUEST_UPLOAD_DIR}/patches/{p.name}") for p in patches),
        )
        return PreparePlan(
            uploads=uploads,
            commands=(
                unpack_command(remote_archive, root, digest),
                install_build_config_command(root),
                build_command(root, self.package, self.package_dir(context), patches),
            ),
            stamp=f"{root}/.damon-eval-built/{self.package}",
        )

    def build_check(self, context: WorkloadContext) -> str:
        """Guest sh that fails, printing why (one line) and the last 20 lines of the build
        log, when the package did not build in the preparation."""
        state = shlex.quote(f"{self._root(context)}/{BUILD_STATE_DIR}/{self.package}")
        return (
            f"if [ -e {state}.failed ]; then "
            f'echo "$(head -n 1 {state}.failed); its log ends:"; '
            f"tail -n 20 {state}.log; exit 1; fi"
        )

    def build_provenance(self, context: WorkloadContext) -> dict | None:
        return build_provenance(self.package)

    def run_plan(self, context: WorkloadContext, params: RunParams) -> RunPlan:
        self._require(context)
        assert context.parsec is not None
        input_size = self.input_size(context, params)
        check_input_size(input_size)
        root = self._root(context)
        threads = params.threads or context.parsec.threads
        return RunPlan(
            command=(
                f"{root}/bin/parsecmgmt",
                *("-a", "run", "-p", self.package, "-c", BUILD_CONFIG, "-i", input_size),
                *("-n", str(threads), "-s", hold_prefix(params.agent_path, self.binary)),
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
