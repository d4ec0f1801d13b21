"""Against the real PARSEC 3.0 tarball (``../shared/parsec/parsec-3.0.tar.gz``): the
harness's patches apply to it, and for all 25 of the seed's workloads the process
the harness makes DAMON target is the benchmark binary, not a shell.

Only the files needed are extracted (run configurations, run.sh, parsecmgmt and its
config/, the patched sources) into a temporary directory; nothing is built.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from parsec_tree import real_parsec_tarball
from results_factory import SEED_WORKLOADS

from damon_eval.workloads import get_workload
from damon_eval.workloads.base import RunParams, WorkloadContext
from damon_eval.workloads.parsec import (
    BLDCONF_PATH,
    BUILD_CONFIG,
    PARAMETER_INPUT_PACKAGES,
    PARSEC_DATA_DIR,
    build_command,
    build_provenance,
    hold_in_run_script_command,
    package_patches,
    patch_command,
)

TARBALL = real_parsec_tarball()
REPO_ROOT = Path(__file__).resolve().parents[2]
TOP = "parsec-3.0/"
INPUT_SIZES = ("test", "simdev", "simsmall", "simmedium", "simlarge", "native")
# parsecmgmt names the platform <arch>-<os>; on x86-64 hosts it is amd64-linux.
PLATFORM = f"amd64-linux.{BUILD_CONFIG}"


def _need_tarball() -> None:
    if not TARBALL.is_file():
        pytest.skip(f"the real PARSEC 3.0 tarball {TARBALL} is absent")


def _extract(dest: Path, *patterns: str) -> Path:
    """Only the members matching ``patterns`` (GNU tar wildcards below parsec-3.0/)."""
    subprocess.run(
        ["tar", "-xzf", str(TARBALL), "-C", str(dest), "--wildcards",
         *(TOP + p for p in patterns)],
        check=True, capture_output=True,
    )  # fmt: skip
    return dest / "parsec-3.0"


RUN_FILES = (
    ".parsec_uniquefile",
    "bin/parsecmgmt",
    "config/*",
    "pkgs/*/*/parsec/*",
    "ext/splash2x/*/*/parsec/*",
    "ext/splash2x/*/*/src/run.sh",
)


@pytest.fixture(scope="module")
def run_tree(tmp_path_factory) -> Path:
    _need_tarball()
    if shutil.which("bash") is None:
        pytest.skip("parsecmgmt needs bash")
    root = _extract(tmp_path_factory.mktemp("parsec-run"), *RUN_FILES)
    shutil.copy(BLDCONF_PATH, root / "config" / f"{BUILD_CONFIG}.bldconf")
    return root


def _runconf(root: Path, relative_dir: str, size: str) -> dict[str, str]:
    """run_exec and run_args of a package's run configuration, as parsecmgmt sources it."""
    path = root / relative_dir / "parsec" / f"{size}.runconf"
    out = subprocess.run(
        ["bash", "-c", 'NTHREADS=1; source "$1"; printf "%s\\n%s\\n" "$run_exec" "$run_args"',
         "runconf", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    return {"run_exec": out[0], "run_args": out[1] if len(out) > 1 else ""}


FAKE_BINARY = '#!/bin/sh\necho unheld "$0" >> "$HOLD_LOG"\n'
# Stands in for de-agent: `<stub> hold -- CMD ARGS` records the command it would hold.
STUB_AGENT = (
    '#!/bin/sh\n[ "$1" = hold ] && [ "$2" = -- ] || exit 3\necho held "$3" >> "$HOLD_LOG"\n'
)


def _install_fake_build(root: Path, workload, run_exec: str, tmp: Path) -> None:
    """What `parsecmgmt -a build` installs, with a fake binary, plus the harness's own
    post-build step (the run.sh rewrite) run exactly as the guest runs it."""
    bindir = root / workload.relative_dir / "inst" / PLATFORM / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    binary = bindir / workload.binary
    binary.write_text(FAKE_BINARY)
    binary.chmod(0o755)
    # the input archives the shared tarball lacks: empty, only for parsecmgmt to unpack
    if workload.package not in PARAMETER_INPUT_PACKAGES:
        inputs = root / workload.relative_dir / "inputs"
        inputs.mkdir(exist_ok=True)
        for size in INPUT_SIZES:
            if not (inputs / f"input_{size}.tar").exists():
                tarfile.open(inputs / f"input_{size}.tar", "w").close()
    if workload.run_script:
        assert run_exec == "bin/run.sh"
        script = bindir / "run.sh"
        shutil.copy(root / workload.relative_dir / "src" / "run.sh", script)
        script.chmod(0o755)
        why = tmp / f"{workload.package}.why"
        rewrite = hold_in_run_script_command(shlex.quote(str(script)), str(why))
        done = subprocess.run(["sh", "-c", rewrite], capture_output=True, text=True)
        assert done.returncode == 0, why.read_text() if why.exists() else done.stderr


def _parsecmgmt_run(root: Path, workloads, size: str, stub: Path, log: Path) -> str:
    """Run the harness's run command (RunPlan) for ``workloads`` with the real parsecmgmt,
    all packages of one kind in one parsecmgmt (it runs them in turn)."""
    context = WorkloadContext.from_config(
        {"parsec": {"path": str(root), "guest_root": str(root), "input": size}}
    )
    params = RunParams(out_dir="/unused", input_size=size, agent_path=str(stub))
    plans = [w.run_plan(context, params) for w in workloads]
    command = list(plans[0].command)
    # one parsecmgmt for all: -p takes several packages
    at = command.index("-p")
    command[at + 1 : at + 2] = [w.package for w in workloads]
    env = {"PATH": os.environ["PATH"], "HOLD_LOG": str(log), "HOME": str(log.parent)}
    done = subprocess.run(command, cwd=plans[0].cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_the_process_damon_targets_is_the_benchmark_binary_for_all_25(run_tree, tmp_path):
    stub = tmp_path / "de-agent"
    stub.write_text(STUB_AGENT)
    stub.chmod(0o755)
    workloads = [get_workload(w) for w in SEED_WORKLOADS]
    assert len(workloads) == 25
    for workload in workloads:
        execs = {_runconf(run_tree, workload.relative_dir, s)["run_exec"] for s in INPUT_SIZES}
        assert len(execs) == 1, f"{workload.id}: run_exec differs between input sizes: {execs}"
        run_exec = execs.pop()
        # PARSEC3 runs its binary directly; SPLASH-2X always through run.sh
        expected = "bin/run.sh" if workload.run_script else f"bin/{workload.binary}"
        assert run_exec == expected, workload.id
        _install_fake_build(run_tree, workload, run_exec, tmp_path)
    for size in ("native",):
        log = tmp_path / f"hold-{size}.log"
        for kind in ("parsec3", "splash2x"):
            group = [w for w in workloads if w.suite == kind]
            _parsecmgmt_run(run_tree, group, size, stub, log)
        held = log.read_text().splitlines()
        # each benchmark was started once, through the hold, and nothing else was held
        assert len(held) == 25, held
        assert all(line.startswith("held ") for line in held), held
        binaries = sorted(Path(line.split(" ", 1)[1]).name for line in held)
        assert binaries == sorted(w.binary for w in workloads)
        assert not any(b.endswith(".sh") or b in ("sh", "bash", "dash") for b in binaries)


def test_unrewritten_run_sh_would_have_held_the_shell(run_tree, tmp_path):
    """The reason for the rewrite: parsecmgmt's -s prefix applies to run_exec, run.sh."""
    assert _runconf(run_tree, "ext/splash2x/kernels/fft", "native")["run_exec"] == "bin/run.sh"
    script = (run_tree / "ext/splash2x/kernels/fft/src/run.sh").read_text()
    assert script.splitlines().count("eval $RUN") == 1


def test_run_script_rewrite_is_idempotent_and_refuses_an_unknown_script(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text('#!/bin/sh\nRUN="prog -x"\neval $RUN\n')
    why = tmp_path / "why"
    command = hold_in_run_script_command(shlex.quote(str(script)), str(why))
    for _ in range(2):
        subprocess.run(["sh", "-c", command], check=True)
        assert script.read_text().splitlines()[-1] == "eval ${DAMON_EVAL_HOLD} $RUN"
    # unset, the script runs as before
    out = subprocess.run(
        ["sh", str(script)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert "prog: not found" in out.stderr or "prog" in out.stderr
    script.write_text("#!/bin/sh\nexec prog\n")
    assert subprocess.run(["sh", "-c", command]).returncode != 0
    assert "has no single line 'eval $RUN'" in why.read_text()


# ---------------------------------------------------------------- patches


def test_every_patch_says_why_before_its_first_hunk():
    patches = sorted((PARSEC_DATA_DIR / "patches").glob("*.patch"))
    assert patches, "no patches shipped"
    for patch in patches:
        header = patch.read_text().split("\n--- ", 1)[0]
        assert header.startswith("Why: ") and len(header.splitlines()) >= 2, patch.name
        package = patch.name.split("--", 1)[0]
        assert patch in package_patches(package)


def test_build_provenance_names_the_config_and_the_patches_with_hashes():
    import hashlib

    build = build_provenance("splash2x.raytrace")
    assert build["config"] == BUILD_CONFIG
    assert build["config_sha256"] == hashlib.sha256(BLDCONF_PATH.read_bytes()).hexdigest()
    assert [p["name"] for p in build["patches"]] == ["splash2x.raytrace--string-h.patch"]
    patch = package_patches("splash2x.raytrace")[0]
    assert build["patches"][0]["sha256"] == hashlib.sha256(patch.read_bytes()).hexdigest()
    assert build_provenance("splash2x.fft")["patches"] == []


RAYTRACE_SRC = "ext/splash2x/apps/raytrace/src/"


@pytest.fixture
def raytrace_tree(tmp_path) -> Path:
    _need_tarball()
    if shutil.which("patch") is None:
        pytest.skip("no patch(1) on this host")
    return _extract(tmp_path, RAYTRACE_SRC + "*", "pkgs/libs/parmacs/src/m4/parmacs.pthreads.c.m4")


def _apply(root: Path, patch: Path, why: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", "-c", patch_command(str(root), str(patch), str(why))],
        capture_output=True, text=True,
    )  # fmt: skip


# gcc 14's new errors, for a host compiler older than 14
GCC14_ERRORS = (
    "-Werror=implicit-function-declaration",
    "-Werror=implicit-int",
    "-Werror=int-conversion",
    "-Werror=incompatible-pointer-types",
)


def _syntax_errors(root: Path, name: str) -> str:
    """m4 and gcc -fsyntax-only as the package's Makefile compiles <name>.C (as C, with the
    pthreads parmacs macros and its build_env's CFLAGS)."""
    src = root / RAYTRACE_SRC
    macros = root / "pkgs/libs/parmacs/src/m4/parmacs.pthreads.c.m4"
    for header in src.glob("*.H"):
        out = subprocess.run(
            ["m4", "-s", "-Ulen", "-Uindex", str(macros), str(header)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        header.with_suffix(".h").write_text(out.stdout)
    c_text = subprocess.run(
        ["m4", "-s", "-Ulen", "-Uindex", str(macros), str(src / f"{name}.C")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (src / f"{name}.c").write_text(c_text)
    done = subprocess.run(
        ["gcc", "-fsyntax-only", "-fcommon", "-DENABLE_THREADS", "-pthread", *GCC14_ERRORS,
         f"{name}.c"],
        cwd=src, capture_output=True, text=True,
    )  # fmt: skip
    return "" if done.returncode == 0 else done.stderr


def test_raytrace_patch_applies_forward_once_and_fixes_the_gcc14_error(raytrace_tree, tmp_path):
    patch = package_patches("splash2x.raytrace")[0]
    why = tmp_path / "why"
    done = _apply(raytrace_tree, patch, why)
    assert done.returncode == 0, done.stdout + done.stderr
    env_c = (raytrace_tree / RAYTRACE_SRC / "env.C").read_text()
    assert "#include <stdio.h>\n#include <string.h>\n" in env_c
    # --forward: a second preparation of the same tree skips it, and says so
    again = _apply(raytrace_tree, patch, why)
    assert again.returncode == 0 and "already applied" in again.stdout
    assert (raytrace_tree / RAYTRACE_SRC / "env.C").read_text() == env_c
    assert not why.exists()
    if shutil.which("gcc") is None or shutil.which("m4") is None:
        pytest.skip("no gcc or m4 to compile env.C and geo.C")
    for name in ("env", "geo"):
        assert _syntax_errors(raytrace_tree, name) == "", name


def test_unpatched_raytrace_fails_with_gcc14_errors(raytrace_tree):
    if shutil.which("gcc") is None or shutil.which("m4") is None:
        pytest.skip("no gcc or m4 to compile env.C")
    assert "implicit declaration of function 'strcmp'" in _syntax_errors(
        raytrace_tree, "env"
    ).replace("\u2018", "'").replace("\u2019", "'")


def test_a_patch_that_does_not_apply_fails_the_package_with_its_name(raytrace_tree, tmp_path):
    env_c = raytrace_tree / RAYTRACE_SRC / "env.C"
    env_c.write_text(env_c.read_text().replace("#include <stdio.h>\n", "#include <cstdio>\n"))
    patch = package_patches("splash2x.raytrace")[0]
    why = tmp_path / "why"
    done = _apply(raytrace_tree, patch, why)
    assert done.returncode != 0
    assert why.read_text().startswith(
        "patch splash2x.raytrace--string-h.patch does not apply to the PARSEC tree"
    )
    # in a build, that line is the run's failure reason (failure_kind build)
    (raytrace_tree / "bin").mkdir()
    (raytrace_tree / "bin" / "parsecmgmt").write_text("#!/bin/sh\necho SHOULD NOT RUN\n")
    (raytrace_tree / "bin" / "parsecmgmt").chmod(0o755)
    workload = get_workload("splash2x/raytrace")
    context = WorkloadContext.from_config(
        {"parsec": {"path": str(raytrace_tree), "guest_root": str(raytrace_tree)}}
    )
    command = build_command(
        str(raytrace_tree), workload.package, workload.package_dir(context), [patch], True
    ).replace("/var/tmp/damon-eval/parsec-upload/patches", str(patch.parent))
    subprocess.run(["sh", "-c", command], check=True)
    checked = subprocess.run(["sh", "-c", workload.build_check(context)], capture_output=True,
                             text=True)  # fmt: skip
    assert checked.returncode == 1
    first = checked.stdout.splitlines()[0]
    assert first.startswith("patch splash2x.raytrace--string-h.patch does not apply")
    assert "SHOULD NOT RUN" not in checked.stdout


# ---------------------------------------------------------------- configs/parsec-quick.yaml

SIZES_BY_LARGENESS = tuple(reversed(INPUT_SIZES))


def test_parsec_quick_uses_the_largest_input_the_shared_tarball_has(monkeypatch, tmp_path):
    from damon_eval.campaign import load_campaign
    from damon_eval.workloads.parsec_source import tarball_members, tree_relative_members

    _need_tarball()
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    quick = REPO_ROOT / "configs" / "parsec-quick.yaml"
    campaign = load_campaign(quick)
    assert campaign.settings["parsec"]["path"] == "../shared/parsec/parsec-3.0.tar.gz"
    assert campaign.settings["guest"]["spec"] == "guest/parsec.yaml"
    assert campaign.configs == ["orig", "rec", "prcl"] and campaign.repeats == 1
    members = set(tree_relative_members(tarball_members(TARBALL)))
    context = WorkloadContext.from_config(campaign.settings)
    runnable = []
    for workload_id in SEED_WORKLOADS:
        workload = get_workload(workload_id)
        if workload.package in PARAMETER_INPUT_PACKAGES:
            largest = "simsmall"  # any size runs; simsmall keeps TCG runs short
        else:
            present = [
                s
                for s in SIZES_BY_LARGENESS
                if f"{workload.relative_dir}/inputs/input_{s}.tar" in members
            ]
            largest = present[0] if present else None
        if largest is None:
            assert workload_id not in campaign.workloads, f"{workload_id} has no input to run"
            continue
        runnable.append(workload_id)
        assert workload.input_size(context) == largest, workload_id
    # the seed's 25 but the two the shared tarball has no input archive for
    assert campaign.workloads == runnable
    assert sorted(set(SEED_WORKLOADS) - set(runnable)) == ["parsec3/facesim", "splash2x/raytrace"]
    # `damon-eval campaign check` from a checkout next to ../shared
    shared_relative = load_campaign(quick, {"parsec": {**campaign.settings["parsec"],
                                                       "path": str(TARBALL)}})  # fmt: skip
    assert shared_relative.unavailable() == []
