"""Against the real PARSEC 3.0 tarball (``../shared/parsec/parsec-3.0.tar.gz``): the
harness's patches apply to it, and for all 25 of the seed's workloads the process
the harness makes DAMON target is the benchmark binary, not a shell.

Only the files needed are extracted (run configurations, run.sh, parsecmgmt and its
config/, the patched sources) into a temporary directory; nothing is built.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from parsec_tree import real_parsec_tarball
from results_factory import SEED_WORKLOADS

from damon_eval.workloads import get_workload
from damon_eval.workloads.base import RunParams, WorkloadContext
from damon_eval.workloads.parsec import PARAMETER_INPUT_PACKAGES
from damon_eval.workloads.parsec_build import (
    BLDCONF_PATH,
    BUILD_CONFIG,
    PARSEC_DATA_DIR,
    build_command,
    build_provenance,
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


def _install_fake_build(root: Path, workload, run_exec: str) -> None:
    """What `parsecmgmt -a build` installs (run.sh for SPLASH-2X), with /bin/true as the
    binary: exec'd under the binary's name, its comm is that name."""
    bindir = root / workload.relative_dir / "inst" / PLATFORM / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/true", bindir / workload.binary)
    if workload.package not in PARAMETER_INPUT_PACKAGES:
        # the input archives the shared tarball lacks: empty, only for parsecmgmt to unpack
        inputs = root / workload.relative_dir / "inputs"
        inputs.mkdir(exist_ok=True)
        for size in INPUT_SIZES:
            if not (inputs / f"input_{size}.tar").exists():
                tarfile.open(inputs / f"input_{size}.tar", "w").close()
    if run_exec == "bin/run.sh":
        shutil.copy(root / workload.relative_dir / "src" / "run.sh", bindir / "run.sh")
        (bindir / "run.sh").chmod(0o755)


def _held_by_the_harness_command(root: Path, workload, agent: Path, tmp: Path) -> dict:
    """Run the harness's run command (RunPlan) with the real parsecmgmt and the real
    ``de-agent hold`` launcher; return what the launcher held, read while it is held."""
    context = WorkloadContext.from_config(
        {"parsec": {"path": str(root), "guest_root": str(root), "input": "native"}}
    )
    params = RunParams(out_dir="/unused", agent_path=str(agent))
    plan = workload.run_plan(context, params)
    fifo = tmp / f"{workload.package}.fifo"
    os.mkfifo(fifo)
    reports = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "DE_AGENT_HOLD_FIFO": str(fifo)}
    proc = subprocess.Popen(
        plan.command, cwd=plan.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        line = b""
        deadline = time.monotonic() + 120
        while not line.endswith(b"\n") and proc.poll() is None:
            assert time.monotonic() < deadline, f"{workload.id}: nothing held"
            try:
                line += os.read(reports, 256)
            except BlockingIOError:
                time.sleep(0.05)
        assert line.startswith(b"held "), (line, proc.stdout.read().decode()[-2000:])
        launcher, pid = map(int, line.split()[1:3])
        held = {
            "comm": Path(f"/proc/{pid}/comm").read_text().strip(),
            "exe": os.readlink(f"/proc/{pid}/exe"),
            "parent_comm": Path(f"/proc/{_ppid(pid)}/comm").read_text().strip(),
        }
        os.kill(launcher, signal.SIGUSR1)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out.decode()[-2000:]
        return held
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        os.close(reports)


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


@pytest.fixture(scope="module")
def agent(tmp_path_factory) -> Path:
    from agent_helpers import need_compiler

    from damon_eval.agent.build import build_agent_locally

    need_compiler()
    return build_agent_locally(tmp_path_factory.mktemp("agent-build"))


def test_the_process_damon_targets_is_the_benchmark_binary_for_all_25(run_tree, agent, tmp_path):
    workloads = [get_workload(w) for w in SEED_WORKLOADS]
    assert len(workloads) == 25
    for workload in workloads:
        execs = {_runconf(run_tree, workload.relative_dir, s)["run_exec"] for s in INPUT_SIZES}
        assert len(execs) == 1, f"{workload.id}: run_exec differs between input sizes: {execs}"
        run_exec = execs.pop()
        # PARSEC3 runs its binary directly, SPLASH-2X through run.sh, which runs $TARGET
        if workload.suite == "splash2x":
            assert run_exec == "bin/run.sh", workload.id
            script = (run_tree / workload.relative_dir / "src" / "run.sh").read_text()
            assert f"TARGET={workload.binary}\n" in script, workload.id
        else:
            assert run_exec == f"bin/{workload.binary}", workload.id
        _install_fake_build(run_tree, workload, run_exec)
    with ThreadPoolExecutor(max_workers=3) as pool:
        found = pool.map(
            lambda w: _held_by_the_harness_command(run_tree, w, agent, tmp_path), workloads
        )
        held = dict(zip(workloads, found, strict=True))
    for workload, process in held.items():
        bindir = run_tree / workload.relative_dir / "inst" / PLATFORM / "bin"
        assert process["comm"] == workload.binary[:15], (workload.id, process)
        assert process["exe"] == str(bindir / workload.binary), (workload.id, process)
        # SPLASH-2X's binary is run.sh's child: the shell was not what got held
        if workload.suite == "splash2x":
            assert process["parent_comm"] == "run.sh", (workload.id, process)


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
        str(raytrace_tree), workload.package, workload.package_dir(context), [patch]
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
    from damon_eval.config.campaign import load_campaign
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
            # any size runs: the one calibrated to 10-60 s under TCG, at least simsmall
            size = workload.input_size(context)
            assert INPUT_SIZES.index(size) >= INPUT_SIZES.index("simsmall"), workload_id
            runnable.append(workload_id)
            continue
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
    # ... which are built all the same
    assert campaign.settings["parsec"]["build_only"] == ["parsec3/facesim", "splash2x/raytrace"]
    assert set(context.parsec.campaign_packages) == set(SEED_WORKLOADS)
    # `damon-eval campaign check` from a checkout next to ../shared
    shared_relative = load_campaign(quick, {"parsec": {**campaign.settings["parsec"],
                                                       "path": str(TARBALL)}})  # fmt: skip
    assert shared_relative.unavailable() == []


# ---------------------------------------------------------------- source digest


def test_the_real_tarball_and_its_unpacked_tree_have_one_digest(monkeypatch, tmp_path):
    """So a campaign switching parsec.path between them neither re-uploads nor rebuilds."""
    from damon_eval.workloads.parsec_source import source_digest, upload_archive

    _need_tarball()
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    subprocess.run(["tar", "-xpzf", str(TARBALL), "-C", str(tmp_path)], check=True)
    tree = tmp_path / "parsec-3.0"
    digest = source_digest(tree)
    assert source_digest(TARBALL) == digest
    # the plain tar a tree is uploaded as (./ members) is the same content too
    assert source_digest(upload_archive(tree)) == digest
