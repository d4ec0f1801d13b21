"""The workload registry: ids, availability reasons, PARSEC command generation, CLI."""

from __future__ import annotations

import json
import tarfile

import pytest
from parsec_tree import fake_parsec_tree

from damon_eval.agent.build import GUEST_AGENT_PATH
from damon_eval.cli import main
from damon_eval.errors import ConfigError
from damon_eval.workloads import (
    SUITES,
    RunParams,
    WorkloadContext,
    WorkloadUnavailable,
    all_workloads,
    get_workload,
    require_available,
)

PARSEC3 = {
    "blackscholes",
    "bodytrack",
    "canneal",
    "dedup",
    "facesim",
    "ferret",
    "fluidanimate",
    "freqmine",
    "raytrace",
    "streamcluster",
    "swaptions",
    "vips",
    "x264",
}
SPLASH2X = {
    "barnes",
    "fft",
    "lu_cb",
    "lu_ncb",
    "ocean_cp",
    "ocean_ncp",
    "radiosity",
    "radix",
    "raytrace",
    "volrend",
    "water_nsquared",
    "water_spatial",
}


def _fake_tree(root, input_size="native"):
    return fake_parsec_tree(root, input_size)


def test_registry_has_every_suite_and_the_evaluation_workloads():
    ids = [w.id for w in all_workloads()]
    assert len(ids) == len(set(ids))
    by_suite = {s: {i.split("/")[1] for i in ids if i.startswith(s + "/")} for s in SUITES}
    assert by_suite["parsec3"] == PARSEC3
    assert by_suite["splash2x"] == SPLASH2X
    assert by_suite["synthetic"] == {"zigzag", "stairs", "hotcold"}
    assert len(by_suite["debian"]) >= 4


def test_unknown_workload_names_close_matches():
    with pytest.raises(ConfigError, match=r"did you mean parsec3/canneal"):
        get_workload("parsec3/caneal")
    with pytest.raises(ConfigError, match=r"suite 'spec' is not one of synthetic, parsec3"):
        get_workload("spec/mcf")


def test_parsec_unavailable_without_a_tree_says_how_to_provide_it():
    context = WorkloadContext()
    workload = get_workload("parsec3/canneal")
    ok, reason = workload.available(context)
    assert not ok and "config key 'parsec'" in reason
    with pytest.raises(WorkloadUnavailable, match=r"parsec: \{path: /srv/parsec-3.0"):
        require_available(workload, context)
    with pytest.raises(WorkloadUnavailable):
        workload.run_plan(context, RunParams(out_dir="/run"))


def test_parsec_availability_reasons(tmp_path):
    root = _fake_tree(tmp_path / "parsec-3.0")
    context = WorkloadContext.from_config({"parsec": {"path": str(root), "input": "native"}})
    assert get_workload("splash2x.fft".replace(".", "/")).available(context)[0]
    (root / "pkgs/kernels/canneal/inputs/input_native.tar").unlink()
    ok, reason = get_workload("parsec3/canneal").available(context)
    assert not ok and "inputs/input_native.tar" in reason
    # parameter-only inputs need no tarball
    (root / "pkgs/apps/swaptions/inputs/input_native.tar").unlink()
    assert get_workload("parsec3/swaptions").available(context)[0]
    (root / "bin/parsecmgmt").unlink()
    ok, reason = get_workload("parsec3/x264").available(context)
    assert not ok and "no bin/parsecmgmt" in reason
    missing = WorkloadContext.from_config({"parsec": str(tmp_path / "nope")})
    assert "does not exist" in get_workload("parsec3/x264").available(missing)[1]


def test_parsec_run_plan_holds_the_benchmark_under_parsecmgmt(tmp_path):
    root = _fake_tree(tmp_path / "parsec-3.0", input_size="simsmall")
    context = WorkloadContext.from_config({"parsec": {"path": str(root), "input": "simsmall"}})
    params = RunParams(out_dir="/var/tmp/run", threads=4)
    plan = get_workload("splash2x/raytrace").run_plan(context, params)
    assert plan.command == (
        "/opt/parsec-3.0/bin/parsecmgmt",
        *("-a", "run", "-p", "splash2x.raytrace", "-c", "gcc-damon-eval", "-i", "simsmall"),
        *("-n", "4"),
        # run.sh starts the binary: the launcher holds the process that execs as it
        *("-s", f"{GUEST_AGENT_PATH} hold --target-comm raytrace --"),
    )
    assert plan.hold == "child" and plan.target == "raytrace"
    parsec3 = get_workload("parsec3/raytrace").run_plan(context, params)
    assert parsec3.target == "rtview"
    assert parsec3.command[-1] == f"{GUEST_AGENT_PATH} hold --target-comm rtview --"
    native = RunParams(out_dir="/r", input_size="native")
    assert "native" in get_workload("parsec3/vips").run_plan(context, native).command
    with pytest.raises(ConfigError, match="PARSEC input 'huge' is not one of test, simdev"):
        get_workload("parsec3/vips").run_plan(context, RunParams(out_dir="/r", input_size="huge"))
    invocation = get_workload("parsec3/vips").agent_invocation(
        context, params, control="/dev/virtio-ports/org.damon-eval.ctl"
    )
    assert invocation.hold == "child" and invocation.cwd == "/opt/parsec-3.0"


def test_parsec_prepare_uploads_one_archive_and_builds_with_the_harness_config(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    root = _fake_tree(tmp_path / "parsec-3.0")
    context = WorkloadContext.from_config({"parsec": {"path": str(root)}})
    plan = get_workload("parsec3/canneal").prepare(context, RunParams(out_dir="/r"))
    archive = plan.uploads[0].source
    assert archive.parent == tmp_path / "cache" / "parsec" / "trees" and archive.suffix == ".tar"
    assert plan.uploads[0].dest.startswith("/var/tmp/damon-eval/parsec-upload/parsec-")
    assert plan.uploads[1].source.name == "gcc-damon-eval.bldconf"
    assert "parsecmgmt -a build -p canneal -c gcc-damon-eval" in plan.commands[-1]
    assert plan.stamp == "/opt/parsec-3.0/.damon-eval-built/canneal"
    version = get_workload("parsec3/x264").version(context)
    assert version.startswith("parsec-source:") and "bldconf:gcc-damon-eval:" in version
    # An unchanged tree is packed once; a changed one gets a new archive and digest.
    mtime = archive.stat().st_mtime_ns
    again = get_workload("splash2x/fft").prepare(context, RunParams(out_dir="/r"))
    assert again.uploads[0] == plan.uploads[0] and archive.stat().st_mtime_ns == mtime
    (root / "version").write_text("3.0-other\n")
    changed = get_workload("parsec3/canneal").prepare(context, RunParams(out_dir="/r"))
    assert changed.uploads[0].source != archive


def _guest_unpack(plan, root):
    """Run the plan's unpack command on the host, the upload put at its guest path's name."""
    import shutil
    import subprocess

    upload = plan.uploads[0]
    staged = root.parent / "upload" / upload.dest.rsplit("/", 1)[1]
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(upload.source, staged)
    command = plan.commands[0].replace(upload.dest, str(staged))
    subprocess.run(["sh", "-c", command], check=True)
    return staged


@pytest.mark.parametrize(
    "suffix,top",
    [(s, t) for s in (".tar", ".tar.gz", ".tar.xz", ".tar.zst") for t in (1, 0)] + [("tree", 0)],
)
def test_parsec_tree_and_every_tarball_form_unpack_to_the_guest_root(
    tmp_path, monkeypatch, suffix, top
):
    import shutil
    import subprocess

    if suffix == ".tar.zst" and not shutil.which("zstd"):
        pytest.skip("zstd is not installed on this host")
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    tree = _fake_tree(tmp_path / "src" / "parsec-3.0")
    if suffix == "tree":
        path = tree
    else:
        path = tmp_path / f"parsec{suffix}"
        flag = {".tar": "", ".tar.gz": "z", ".tar.xz": "J", ".tar.zst": "--zstd "}[suffix]
        where = ["-C", str(tree.parent), "parsec-3.0"] if top else ["-C", str(tree), "."]
        options = f"-{flag}cf" if flag and not flag.startswith("--") else "-cf"
        extra = ["--zstd"] if suffix == ".tar.zst" else []
        subprocess.run(["tar", *extra, options, str(path), *where], check=True)
    context = WorkloadContext.from_config(
        {"parsec": {"path": str(path), "guest_root": str(tmp_path / "guest" / "parsec-3.0")}}
    )
    workload = get_workload("splash2x/fft")
    ok, reason = workload.available(context)
    assert ok, reason
    plan = workload.prepare(context, RunParams(out_dir="/r"))
    guest_root = tmp_path / "guest" / "parsec-3.0"
    staged = _guest_unpack(plan, guest_root)
    assert (guest_root / "bin" / "parsecmgmt").is_file()
    assert (guest_root / "ext/splash2x/kernels/fft/parsec/gcc.bldconf").is_file()
    assert not staged.exists()  # the archive is removed once unpacked
    # An unpacked root holding this digest is kept: the command does nothing.
    (guest_root / "kept").write_text("")
    _guest_unpack(plan, guest_root)
    assert (guest_root / "kept").exists()


def test_parsec_tarball_without_parsecmgmt_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    other = tmp_path / "a"
    (other / "b").mkdir(parents=True)
    (other / "b" / "x").write_text("")
    tarball = tmp_path / "not-parsec.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(other, arcname="a")
    context = WorkloadContext.from_config({"parsec": {"path": str(tarball)}})
    ok, reason = get_workload("splash2x/fft").available(context)
    assert not ok and "has no bin/parsecmgmt" in reason
    not_tar = tmp_path / "parsec.zip"
    not_tar.write_bytes(b"PK")
    bad = WorkloadContext.from_config({"parsec": {"path": str(not_tar)}})
    assert "neither a directory nor a tarball" in get_workload("splash2x/fft").available(bad)[1]


def test_parsec_input_checks_name_the_file_and_the_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    tree = _fake_tree(tmp_path / "parsec-3.0", input_size="simdev")
    tarball = tmp_path / "parsec-3.0.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tree, arcname="parsec-3.0")
    for path in (tree, tarball):
        context = WorkloadContext.from_config({"parsec": {"path": str(path), "input": "simsmall"}})
        ok, reason = get_workload("parsec3/canneal").available(context)
        assert not ok
        assert "pkgs/kernels/canneal/inputs/input_simsmall.tar" in reason
        assert "parsec-3.0-input-sim.tar.gz" in reason and "core" not in reason
        # parameter-input packages run at any size
        assert get_workload("splash2x/radix").available(context)[0]
        assert get_workload("parsec3/streamcluster").available(context)[0]
        per_workload = WorkloadContext.from_config(
            {"parsec": {"path": str(path), "input": "simsmall",
                        "inputs": {"parsec3/canneal": "simdev"}}}
        )  # fmt: skip
        assert get_workload("parsec3/canneal").available(per_workload)[0]
        plan = get_workload("parsec3/canneal").run_plan(
            per_workload, RunParams(out_dir="/r", input_size="simsmall")
        )
        assert plan.command[plan.command.index("-i") + 1] == "simdev"
    with pytest.raises(ConfigError, match="PARSEC input 'huge'"):
        WorkloadContext.from_config({"parsec": {"path": "/p", "inputs": {"parsec3/vips": "huge"}}})
    with pytest.raises(ConfigError, match="not a parsec3/ or splash2x/ workload"):
        WorkloadContext.from_config({"parsec": {"path": "/p", "inputs": {"debian/x264": "test"}}})


def test_parsec_build_failure_is_recorded_not_raised(tmp_path):
    import subprocess

    from damon_eval.workloads.parsec_build import build_command

    root = tmp_path / "parsec-3.0"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "parsecmgmt").write_text('#!/bin/sh\necho building "$@"\nexit ${FAIL:-0}\n')
    (root / "bin" / "parsecmgmt").chmod(0o755)
    workload = get_workload("parsec3/canneal")
    context = WorkloadContext.from_config({"parsec": {"path": str(root), "guest_root": str(root)}})
    package_dir = workload.package_dir(context)
    command = build_command(str(root), "canneal", package_dir, [])
    check = workload.build_check(context)
    # Failing parsecmgmt: the command still exits 0, the check fails with the log's tail.
    subprocess.run(["sh", "-c", command], check=True, env={"FAIL": "1", "PATH": "/usr/bin:/bin"})
    failed = subprocess.run(["sh", "-c", check], capture_output=True, text=True)
    assert failed.returncode == 1
    assert failed.stdout.splitlines()[0] == (
        "parsecmgmt -a build -p canneal -c gcc-damon-eval failed; its log ends:"
    )
    assert "building -a build -p canneal -c gcc-damon-eval" in failed.stdout
    # parsecmgmt succeeds but installs no binary: still a failure.
    subprocess.run(["sh", "-c", command], check=True, env={"PATH": "/usr/bin:/bin"})
    assert subprocess.run(["sh", "-c", check], capture_output=True).returncode == 1
    (root / workload.relative_dir / "inst/amd64-linux.gcc-damon-eval/bin").mkdir(parents=True)
    (root / workload.relative_dir / "inst/amd64-linux.gcc-damon-eval/bin/canneal").write_text("")
    subprocess.run(["sh", "-c", command], check=True, env={"PATH": "/usr/bin:/bin"})
    assert subprocess.run(["sh", "-c", check], capture_output=True).returncode == 0


def test_context_from_config_rejects_bad_parsec_entries():
    with pytest.raises(ConfigError, match="unknown parsec key"):
        WorkloadContext.from_config({"parsec": {"path": "/p", "input_size": "native"}})
    with pytest.raises(ConfigError, match="must be a mapping with a path"):
        WorkloadContext.from_config({"parsec": {"input": "native"}})
    with pytest.raises(ConfigError, match="PARSEC input 'big'"):
        WorkloadContext.from_config({"parsec": {"path": "/p", "input": "big"}})


def test_debian_availability_follows_the_guest_package_list():
    context = WorkloadContext(guest_packages=frozenset({"x264", "python3"}))
    assert get_workload("debian/x264").available(context)[0]
    ok, reason = get_workload("debian/redis").available(context)
    assert not ok and "lacks Debian package(s) redis-server redis-tools" in reason
    assert get_workload("debian/redis").available(WorkloadContext())[0]
    no_gcc = WorkloadContext(guest_packages=frozenset())
    assert "no gcc" in get_workload("synthetic/zigzag").available(no_gcc)[1]


def test_scale_changes_the_amount_of_work():
    context = WorkloadContext()
    small = RunParams(out_dir="/r", scale=0.05)
    full = RunParams(out_dir="/r")
    x264 = get_workload("debian/x264")
    assert "pan-1280x720-10.y4m" in x264.run_plan(context, small).command[-1]
    assert "pan-1280x720-200.y4m" in x264.run_plan(context, full).command[-1]
    sqlite = get_workload("debian/sqlite3").run_plan(context, small)
    assert ".parameter set @rows 100000" in sqlite.command
    zigzag = get_workload("synthetic/zigzag").run_plan(context, small)
    assert zigzag.command[1:3] == ("--scale", "0.05")
    assert zigzag.expected_runtime_s == pytest.approx(3.5)
    assert not zigzag.work_based
    assert get_workload("debian/x264").run_plan(context, small).work_based
    redis = get_workload("debian/redis").run_plan(context, small)
    assert redis.hold == "child" and redis.target == "redis-server"
    with pytest.raises(ConfigError, match="scale must be > 0"):
        RunParams(out_dir="/r", scale=0)


def test_prepare_script_skips_when_stamped():
    plan = get_workload("synthetic/zigzag").prepare(WorkloadContext(), RunParams(out_dir="/r"))
    script = plan.script()
    assert script.startswith("set -e\nif [ -e /opt/damon-eval/bin/.accgen-")
    assert "gcc -std=c11 -O2 -Wall -Wextra -o /opt/damon-eval/bin/accgen" in script


def test_workloads_list_command(capsys, tmp_path):
    assert main(["workloads", "list"]) == 0
    out = capsys.readouterr().out
    assert "synthetic/zigzag" in out and "parsec3/canneal" in out
    assert "To provide PARSEC, set 'parsec: {path: /srv/parsec-3.0, input: native}'" in out
    root = _fake_tree(tmp_path / "parsec-3.0")
    config = tmp_path / "campaign.yaml"
    from damon_eval.workloads.parsec_build import PARSEC_BUILD_PACKAGES

    packages = ", ".join(["gcc", *PARSEC_BUILD_PACKAGES])
    config.write_text(f"parsec:\n  path: {root}\n  input: native\nguest_packages: [{packages}]\n")
    assert main(["workloads", "list", "--json", "--config", str(config)]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["parsec3/canneal"]["available"] is True
    assert rows["parsec3/canneal"]["target"] == "canneal"
    assert rows["debian/x264"]["available"] is False
    assert rows["synthetic/hotcold"]["hold"] == "exec"


def test_workloads_list_bad_config_is_one_line_error(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("parsec: [1, 2]\n")
    assert main(["workloads", "list", "--config", str(config)]) == 2
    assert "config key parsec must be a mapping" in capsys.readouterr().err


def test_campaign_style_parsec_section(tmp_path):
    """The campaign schema's shape: path may be null, threads feed parsecmgmt -n."""
    unset = WorkloadContext.from_config({"parsec": {"path": None, "input": "native", "threads": 1}})
    assert unset.parsec is None
    root = _fake_tree(tmp_path / "parsec-3.0")
    context = WorkloadContext.from_config({"parsec": {"path": str(root), "threads": 8}})
    plan = get_workload("parsec3/canneal").run_plan(context, RunParams(out_dir="/r"))
    assert plan.command[plan.command.index("-n") + 1] == "8"
    explicit = RunParams(out_dir="/r", threads=2)
    plan = get_workload("parsec3/canneal").run_plan(context, explicit)
    assert plan.command[plan.command.index("-n") + 1] == "2"
    with pytest.raises(ConfigError, match="parsec threads must be an integer >= 1, not 0"):
        WorkloadContext.from_config({"parsec": {"path": str(root), "threads": 0}})


def test_workloads_show_prints_the_guest_plan(capsys, tmp_path):
    assert main(["workloads", "show", "synthetic/hotcold", "--scale", "0.15"]) == 0
    out = capsys.readouterr().out
    assert "# DAMON target: accgen (hold exec)" in out
    assert "# expected runtime under KVM: ~15 s" in out
    assert "accgen.c -> /opt/damon-eval/src/accgen.c" in out
    assert "/opt/damon-eval/bin/de-agent run --out /var/tmp/damon-eval/runs/RUN" in out
    assert "--control /dev/virtio-ports/org.damon-eval.ctl" in out
    assert "--scale 0.15 --truth /var/tmp/damon-eval/runs/RUN/truth.json" in out
    assert main(["workloads", "show", "parsec3/canneal"]) == 2
    err = capsys.readouterr().err
    assert "parsec3/canneal is not available" in err and "To provide PARSEC, set" in err
    root = _fake_tree(tmp_path / "parsec-3.0")
    assert main(["workloads", "show", "parsec3/canneal", "--parsec", str(root)]) == 0
    out = capsys.readouterr().out
    assert "-s '/opt/damon-eval/bin/de-agent hold --target-comm canneal --'" in out
    assert "parsecmgmt -a build -p canneal" in out


def test_parsec_needs_a_build_capable_guest_spec(tmp_path, monkeypatch):
    from damon_eval.workloads.parsec_build import PARSEC_BUILD_PACKAGES

    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    root = _fake_tree(tmp_path / "parsec-3.0")
    default = WorkloadContext.from_config(
        {"parsec": {"path": str(root)}, "guest": {"spec": "guest/default.yaml"}}
    )
    ok, reason = get_workload("splash2x/fft").available(default)
    assert not ok and "lacks the PARSEC build packages g++ m4" in reason
    parsec = WorkloadContext.from_config(
        {"parsec": {"path": str(root)}, "guest": {"spec": "guest/parsec.yaml"}}
    )
    assert set(PARSEC_BUILD_PACKAGES) <= parsec.guest_packages
    assert get_workload("splash2x/fft").available(parsec)[0]


def test_parsec_run_provenance_names_the_build_config_and_patches(tmp_path, monkeypatch):
    """What a PARSEC run writes in result.json (here a build failure) fits the schema."""
    import hashlib
    import json

    from results_factory import CampaignSpec, RunSpec, make_result, write_result

    from damon_eval.analysis.errors import ResultFileError
    from damon_eval.analysis.runtable import load_result
    from damon_eval.config.campaign import campaign_from_dict
    from damon_eval.config.runkey import RunKey
    from damon_eval.measure.plan import RunRequest, plan_run
    from damon_eval.measure.result import run_provenance
    from damon_eval.workloads.parsec_build import BLDCONF_PATH

    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    tree = _fake_tree(tmp_path / "parsec-3.0", input_size="simdev")
    campaign = campaign_from_dict(
        {
            "campaign": "p",
            "workloads": ["splash2x/raytrace"],
            "configs": ["orig"],
            "guest": {"spec": "guest/parsec.yaml"},
            # built in the guest: no host build (nor image) needed to plan the run
            "parsec": {"path": str(tree), "input": "simdev", "build": "guest"},
        },
        "inline",
    )
    key = RunKey("splash2x", "raytrace", "orig", 1)
    request = RunRequest(campaign, key, tmp_path / "r" / "result.json")
    plan = plan_run(request)
    build = run_provenance(plan, {})["workload"]["build"]
    assert build["config"] == "gcc-damon-eval"
    assert build["config_sha256"] == hashlib.sha256(BLDCONF_PATH.read_bytes()).hexdigest()
    assert [p["name"] for p in build["patches"]] == ["splash2x.raytrace--string-h.patch"]
    spec = RunSpec("splash2x", "raytrace", "orig", 1, status="failed", failure_kind="build")
    result = make_result(spec, CampaignSpec(workloads=["splash2x/raytrace"]))
    result["provenance"]["workload"]["build"] = build
    path = write_result(tmp_path / "results", result)
    loaded = load_result(path, tmp_path / "results")
    assert loaded.failure_kind == "build"
    result["provenance"]["workload"]["build"] = {**build, "config_sha256": "nothex"}
    path.write_text(json.dumps(result))
    with pytest.raises(ResultFileError, match=r"provenance\.workload\.build\.config_sha256"):
        load_result(path, tmp_path / "results")
    # a workload the harness does not build records null
    assert get_workload("synthetic/hotcold").build_provenance(plan.context) is None


def test_parsec_run_provenance_records_the_input_the_run_uses(tmp_path, monkeypatch):
    """parsec.inputs overrides parsec.input: the command and provenance.workload.input
    both name the per-workload size (a parsec-quick run recorded the default once)."""
    from damon_eval.config.campaign import campaign_from_dict
    from damon_eval.config.runkey import RunKey
    from damon_eval.measure.plan import RunRequest, plan_run
    from damon_eval.measure.result import run_provenance

    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    tree = _fake_tree(tmp_path / "parsec-3.0", input_size="simdev")
    campaign = campaign_from_dict(
        {
            "campaign": "p",
            "workloads": ["parsec3/canneal", "splash2x/fft"],
            "configs": ["orig"],
            "guest": {"spec": "guest/parsec.yaml"},
            "parsec": {
                "path": str(tree),
                "input": "simsmall",
                "inputs": {"parsec3/canneal": "simdev"},
                "build": "guest",
            },
        },
        "inline",
    )

    def workload_provenance(suite, name):
        request = RunRequest(campaign, RunKey(suite, name, "orig", 1), tmp_path / "r.json")
        return run_provenance(plan_run(request), {})["workload"]

    canneal = workload_provenance("parsec3", "canneal")
    assert canneal["input"] == "simdev" and "-i simdev" in canneal["command"]
    fft = workload_provenance("splash2x", "fft")
    assert fft["input"] == "simsmall" and "-i simsmall" in fft["command"]
