"""How PARSEC packages are built: the build configuration, patches and guest commands,
and a campaign's build on the host (``parsec.build: host``).

The package tables are here, below :mod:`damon_eval.workloads.parsec` (the
workloads that run them), so a campaign's host build finds its packages
without the workload registry.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

from damon_eval.errors import ConfigError, GuestError
from damon_eval.paths import DATA_DIR
from damon_eval.workloads.base import ParsecSource, WorkloadUnavailable, files_digest
from damon_eval.workloads.parsec_host import (
    HostBuild,
    build_on_host,
    host_build_key,
    resolve_build_mode,
)
from damon_eval.workloads.parsec_source import source_digest

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
PACKAGES: dict[str, dict[str, tuple[str, str]]] = {
    "parsec3": PARSEC3_PACKAGES,
    "splash2x": SPLASH2X_PACKAGES,
}


def package_name(suite: str, name: str) -> str:
    """The name parsecmgmt knows: ``blackscholes``, ``splash2x.fft``."""
    return name if suite == "parsec3" else f"splash2x.{name}"


def package_relative_dir(suite: str, group: str, name: str) -> str:
    """The package's directory in a PARSEC tree: ``pkgs/apps/x264``, ``ext/splash2x/...``."""
    base = "pkgs" if suite == "parsec3" else "ext/splash2x"
    return f"{base}/{group}/{name}"


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


def build_mode(source: ParsecSource) -> str:
    """``host`` or ``guest`` for this source; ``auto`` without a campaign's package list
    (a single workload prepared by hand) builds in the guest."""
    if source.build == "auto" and not source.campaign_packages:
        return "guest"
    return resolve_build_mode(source.build)


def _campaign_packages(source: ParsecSource) -> list[tuple[str, str]]:
    """(package, directory relative to the tree) of the campaign's parsec3/splash2x ids."""
    packages = []
    for workload_id in source.campaign_packages:
        suite, _, name = workload_id.partition("/")
        table = PACKAGES.get(suite, {})
        if name not in table:
            raise ConfigError(
                f"unknown workload {workload_id!r} ({suite} has: {', '.join(sorted(table))})"
            )
        group = table[name][0]
        packages.append((package_name(suite, name), package_relative_dir(suite, group, name)))
    return packages


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
    packages = _campaign_packages(source)
    if not packages:
        raise ConfigError("the campaign has no parsec3/ or splash2x/ workloads to build")
    root = source.guest_root
    patches = sorted({p for package, _ in packages for p in package_patches(package)})
    identity = {
        "source": source_digest(source.path),
        "packages": sorted(package for package, _ in packages),
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
            package,
            build_command(context_root, package, f"{root}/{directory}", package_patches(package)),
        )
        for package, directory in packages
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
