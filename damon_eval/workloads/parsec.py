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
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path

from damon_eval.agent.protocol import hold_prefix
from damon_eval.errors import ConfigError, GuestError
from damon_eval.paths import DATA_DIR
from damon_eval.workloads.base import (
    ParsecSource,
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
from damon_eval.workloads.parsec_host import (
    HostBuild,
    build_on_host,
    host_build_key,
    resolve_build_mode,
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
# SPLASH-2X runs bin/run.sh, which starts the binary named by its TARGET= (src/run.sh).
SPLASH2X_PACKAGES: dict[str, tuple[str, str]] = {
    "barnes": ("apps", "barnes"),
    "fft": ("kernels", "fft"),
    "lu_cb": ("kernels", "lu_cb"),
    "lu_ncb": ("kernels", "lu_ncb"),
    "ocean_cp": ("apps", "ocean_cp"),
    "ocean_ncp": ("apps", "ocean_ncp"),
    "radiosity": ("apps", "radiosity"),
    "radix": ("kernels", "radix"),
    "raytrace": ("apps", "raytrace"),
    "volrend": ("apps", "volrend"),
    "water_nsquared": ("apps", "water_nsquared"),
    "water_spatial": ("apps", "water_spatial"),
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
# Debian packages `parsecmgmt -a build` needs for the 25 seed packages (configs/guest/parsec.yaml).
PARSEC_BUILD_PACKAGES: tuple[str, ...] = (
    "g++",
    "make",
    "m4",
    "pkg-config",
    "gettext",
    "patch",
    "libtbb-dev",
    "libx11-dev",
    "libxext-dev",
    "libxmu-dev",
    "libxi-dev",
    "libglu1-mesa-dev",
    "mesa-common-dev",
    "zstd",
    "xz-utils",
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
GUEST_UPLOAD_DIR = "/var/tmp/damon-eval/parsec-upload"
BUILD_CONFIG = "gcc-damon-eval"
PARSEC_DATA_DIR = DATA_DIR / "parsec"
BLDCONF_PATH = PARSEC_DATA_DIR / f"{BUILD_CONFIG}.bldconf"
BUILD_STATE_DIR = ".damon-eval-build"


def package_patches(package: str) -> list[Path]:
    """``data/parsec/patches/<package>--*.patch``: applied (patch -p1) to the guest's copy."""
    return sorted((PARSEC_DATA_DIR / "patches").glob(f"{package}--*.patch"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_provenance(package: str) -> dict:
    """How ``package`` is built: the build configuration and the patches, with hashes."""
    return {
        "config": BUILD_CONFIG,
        "config_sha256": _sha256(BLDCONF_PATH),
        "patches": [{"name": p.name, "sha256": _sha256(p)} for p in package_patches(package)],
    }


def install_build_config_command(root: str) -> str:
    """Guest sh: config/gcc-damon-eval.bldconf and, in every package, a local
    gcc-damon-eval.bldconf that loads the package's own gcc.bldconf (what
    ``bldconfadd -c gcc`` does for pkgs/, extended to ext/splash2x)."""
    r = shlex.quote(root)
    return (
        f"cp {GUEST_UPLOAD_DIR}/{BUILD_CONFIG}.bldconf {r}/config/{BUILD_CONFIG}.bldconf && "
        f"cd {r} && for f in $(find pkgs ext -path '*/parsec/gcc.bldconf'); do "
        f"d=${{f%/gcc.bldconf}}; printf '#!/bin/bash\\nsource ${{PARSECDIR}}/%s/gcc.bldconf\\n' "
        f'"$d" > "$d/{BUILD_CONFIG}.bldconf"; done'
    )


def patch_command(root: str, patch: str, reason_file: str) -> str:
    """Guest sh: apply ``patch`` with ``patch -p1 --forward`` semantics: applied when it
    applies, skipped when already applied (it reverses cleanly), otherwise fails, writing
    one line that names the patch to ``reason_file`` and patch's own output after it."""
    r, p, why = shlex.quote(root), shlex.quote(patch), shlex.quote(reason_file)
    name = shlex.quote(Path(patch).name)
    return (
        f"if patch -d {r} -p1 --forward --dry-run -s < {p} >/dev/null 2>&1; then "
        f"patch -d {r} -p1 --forward -s -r - < {p}; "
        f"elif patch -d {r} -p1 -R --dry-run -s -f < {p} >/dev/null 2>&1; then "
        f"echo 'damon-eval: patch '{name}' already applied'; "
        f"else echo 'patch '{name}' does not apply to the PARSEC tree "
        f"(patch -p1 --forward; is it PARSEC 3.0?)' > {why}; "
        f"patch -d {r} -p1 --forward --dry-run < {p}; false; fi"
    )


def build_command(root: str, package: str, package_dir: str, patches: list[Path]) -> str:
    """Guest sh: patch and build one package; a failure is recorded (``<pkg>.failed``, whose
    first line says why, and ``<pkg>.log``), not raised, so it fails only that package's runs."""
    r, state = shlex.quote(root), f"{root}/{BUILD_STATE_DIR}/{package}"
    q_state, why = shlex.quote(state), f"{state}.why"
    q_why = shlex.quote(why)
    steps = [patch_command(root, f"{GUEST_UPLOAD_DIR}/patches/{p.name}", why) for p in patches]
    steps.append(
        f"{{ PARSECDIR={r} ./bin/parsecmgmt -a build -p {package} -c {BUILD_CONFIG} || "
        f"{{ echo 'parsecmgmt -a build -p {package} -c {BUILD_CONFIG} failed' > {q_why}; "
        f"false; }}; }}"
    )
    steps.append(
        f"{{ ls {shlex.quote(package_dir)}/inst/*.{BUILD_CONFIG}/bin/* >/dev/null 2>&1 || "
        f"{{ echo 'parsecmgmt -a build -p {package} -c {BUILD_CONFIG} installed no binary "
        f"in inst/*.{BUILD_CONFIG}/bin' > {q_why}; false; }}; }}"
    )
    return (
        f"mkdir -p {r}/{BUILD_STATE_DIR} && cd {r} && rm -f {q_state}.failed {q_why} && "
        f"if ( {' && '.join(steps)} ) > {q_state}.log 2>&1; then :; "
        f"else cat {q_why} > {q_state}.failed 2>/dev/null || "
        f"echo 'parsecmgmt -a build -p {package} -c {BUILD_CONFIG} failed' > {q_state}.failed; fi"
    )


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


def build_mode(source: ParsecSource) -> str:
    """``host`` or ``guest`` for this source; ``auto`` without a campaign's package list
    (a single workload prepared by hand) builds in the guest."""
    if source.build == "auto" and not source.campaign_packages:
        return "guest"
    return resolve_build_mode(source.build)


def _campaign_workloads(source: ParsecSource) -> list[ParsecWorkload]:
    from damon_eval.workloads import get_workload

    workloads = [get_workload(w) for w in source.campaign_packages]
    return [w for w in workloads if isinstance(w, ParsecWorkload)]


def _image_spec(source: ParsecSource):
    from damon_eval.guest.spec import load_spec
    from damon_eval.paths import resolve_config_path

    spec = load_spec(resolve_config_path(source.image_spec) if source.image_spec else None)
    # A campaign's guest.kernel replaces the spec's, as for the image its runs boot.
    return spec if source.image_kernel is None else spec.with_kernel(source.image_kernel)


def campaign_image(source: ParsecSource):
    """The built guest image the campaign's runs boot (PARSEC is built in its userland)."""
    from damon_eval.guest.cache import cached_image

    image = cached_image(_image_spec(source))
    if image is None:
        raise GuestError(
            f"the guest image for spec {source.image_spec or 'default'} is not built; "
            "run `damon-eval guest build` first (the pipeline's guest_image rule does)"
        )
    return image


def image_userland_digest(image) -> str:
    """What of an image a build depends on: its installed packages and their versions
    (not the harness code that built it, so a harness change keeps the build)."""
    return files_digest(image.packages_path)


def host_build_inputs(source: ParsecSource) -> dict[str, object]:
    """What a host build of the campaign's PARSEC packages needs, and its identity."""
    workloads = _campaign_workloads(source)
    if not workloads:
        raise ConfigError("the campaign has no parsec3/ or splash2x/ workloads to build")
    root = source.guest_root
    patches = sorted({p for w in workloads for p in package_patches(w.package)})
    identity = {
        "source": source_digest(source.path),
        "packages": sorted(w.package for w in workloads),
        "image_userland": image_userland_digest(campaign_image(source)),
        "guest_root": root,
        "bldconf": f"{BUILD_CONFIG}:{files_digest(BLDCONF_PATH)}",
        "patches": [(p.name, files_digest(p)) for p in patches],
    }
    uploads = [(BLDCONF_PATH, f"{GUEST_UPLOAD_DIR}/{BUILD_CONFIG}.bldconf")]
    uploads += [(p, f"{GUEST_UPLOAD_DIR}/patches/{p.name}") for p in patches]
    context_root = f"{root}"
    commands = [
        (
            w.package,
            build_command(
                context_root, w.package, f"{root}/{w.relative_dir}", package_patches(w.package)
            ),
        )
        for w in workloads
    ]
    return {
        "key": host_build_key(
            source=identity["source"],
            packages=identity["packages"],
            image_userland=identity["image_userland"],
            guest_root=root,
            bldconf=identity["bldconf"],
            patches=identity["patches"],
        ),
        "identity": identity,
        "uploads": uploads,
        "setup_command": install_build_config_command(root),
        "package_commands": commands,
    }


def host_build_key_for(source: ParsecSource) -> str:
    return str(host_build_inputs(source)["key"])


def require_host_build(source: ParsecSource) -> HostBuild:
    key = host_build_key_for(source)
    built = HostBuild.load(key)
    if built is None:
        raise WorkloadUnavailable(
            f"PARSEC is not built on the host yet (build key {key}); run "
            "`damon-eval parsec build CAMPAIGN` first (the pipeline's parsec_build rule "
            "does), or set parsec.build: guest"
        )
    return built


def build_parsec_on_host(source: ParsecSource, progress=print) -> HostBuild:
    """Build the campaign's PARSEC packages in a chroot of its (already built) image."""
    image = campaign_image(source)
    inputs = host_build_inputs(source)
    return build_on_host(
        key=str(inputs["key"]),
        source=source.path,
        disk_qcow2=image.disk_path,
        guest_root=source.guest_root,
        uploads=inputs["uploads"],  # type: ignore[arg-type]
        setup_command=str(inputs["setup_command"]),
        package_commands=inputs["package_commands"],  # type: ignore[arg-type]
        identity=inputs["identity"],  # type: ignore[arg-type]
        progress=progress,
    )


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
