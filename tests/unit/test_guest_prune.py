"""``damon-eval guest prune`` on the own-kernel cache (``kernels/<key>/``), in a fake
cache under tmp_path ($DAMON_EVAL_CACHE), never the real one."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest
import yaml

from damon_eval.guest import prune as prune_mod
from damon_eval.guest.kernels import identity_key, resolve_kernel
from damon_eval.guest.spec import image_key, load_spec


def _build_tree(path: Path, config: str = "CONFIG_DAMON=y\n") -> Path:
    (path / "arch/x86/boot").mkdir(parents=True)
    (path / "arch/x86/boot/bzImage").write_bytes(b"bzImage " + path.name.encode())
    (path / ".config").write_text(config)
    return path


def _prepared(kernels: Path, key: str) -> Path:
    (kernels / key / "modules").mkdir(parents=True)
    (kernels / key / "vmlinuz").write_bytes(b"k")
    (kernels / key / "kernel.json").write_text(json.dumps({"release": "7.0"}))
    return kernels / key


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(root))
    return root


def test_prune_removes_kernels_no_kept_spec_boots(cache, tmp_path, monkeypatch):
    kept_tree = _build_tree(tmp_path / "kept-build")
    spec = load_spec().with_kernel({"build": str(kept_tree)})
    kept_key = identity_key(resolve_kernel({"build": str(kept_tree)}).identity())
    kernels = cache / "kernels"
    _prepared(kernels, kept_key)
    old = _prepared(kernels, "00000000000000ol")
    in_use = _prepared(kernels, "0000000000000use")
    busy = _prepared(kernels, "000000000000busy")
    (kernels / "logs").mkdir()
    (kernels / "logs" / f"{kept_key}-x.log").write_text("build log\n")
    (kernels / f".work-{kept_key}-abcd").mkdir()
    (kernels / ".000000000000busy.lock").touch()
    (kernels / ".work-000000000000busy-beef").mkdir()
    running = f"qemu-system-x86_64 -kernel {in_use}/vmlinuz"
    monkeypatch.setattr(prune_mod, "_command_lines", lambda: [running])
    with open(kernels / ".000000000000busy.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a preparation of that key is under way
        planned = {i.path.name: i.reason for i in prune_mod.plan([spec])}
        assert planned == {
            "00000000000000ol": "kernel of no kept spec",
            f".work-{kept_key}-abcd": "left over from an interrupted kernel preparation",
        }
        listed = prune_mod.prune([spec], dry_run=True)
        assert {i.path for i in listed} == {old, kernels / f".work-{kept_key}-abcd"}
        assert old.exists()  # a dry run only lists
        prune_mod.prune([spec])
    assert not old.exists() and not (kernels / f".work-{kept_key}-abcd").exists()
    assert (kernels / kept_key).exists() and in_use.exists() and busy.exists()
    assert (kernels / "logs").exists() and (kernels / ".work-000000000000busy-beef").exists()
    # the lock is free now: the busy kernel is of no kept spec and its work dir is left over
    names = {i.path.name for i in prune_mod.plan([spec])}
    assert names == {"000000000000busy", ".work-000000000000busy-beef"}
    # a spec with a Debian package kernel keeps no prepared kernel; the images' rule is unchanged
    assert "kernel of no kept spec" in {i.reason for i in prune_mod.plan([load_spec()])}
    assert image_key(spec) != image_key(load_spec())


def test_prune_command_keeps_a_campaigns_kernels(cache, tmp_path, capsys):
    from damon_eval.cli import main

    _build_tree(tmp_path / "mine")
    campaign = tmp_path / "ab.yaml"
    campaign.write_text(
        yaml.safe_dump(
            {
                "campaign": "ab",
                "workloads": ["synthetic/zigzag"],
                "configs": ["orig"],
                "repeats": 1,
                "kernels": {"base": "linux-image-amd64", "mine": {"build": "mine"}},
            }
        )
    )
    mine_key = identity_key(resolve_kernel({"build": str(tmp_path / "mine")}).identity())
    kernels = cache / "kernels"
    _prepared(kernels, mine_key)
    old = _prepared(kernels, "00000000000000ol")
    assert main(["guest", "prune", "--dry-run", "--campaign", str(campaign)]) == 0
    out = capsys.readouterr().out
    assert f"would remove {old} (kernel of no kept spec)" in out.splitlines()
    assert mine_key not in out and old.exists()
    # without --campaign its kernel is of no kept spec
    assert main(["guest", "prune", "--dry-run"]) == 0
    assert f"would remove {kernels / mine_key} (kernel of no kept spec)" in capsys.readouterr().out
    assert main(["guest", "prune", "--campaign", str(campaign)]) == 0
    assert f"removed {old} (kernel of no kept spec)" in capsys.readouterr().out
    assert not old.exists() and (kernels / mine_key).exists()


def test_prune_keeps_the_shipped_specs_and_campaigns_by_default(cache, capsys):
    """Without --spec or --campaign: configs/guest/*.yaml and every campaign in configs/
    (kernel-ab's backports kernel included) keep their images; --spec narrows it."""
    from damon_eval.cli import main
    from damon_eval.commands.guest import campaign_specs
    from damon_eval.config.campaign import load_campaign
    from damon_eval.paths import configs_dir

    images = cache / "images"
    parsec_key = image_key(load_spec(configs_dir() / "guest" / "parsec.yaml"))
    ab_keys = {
        image_key(s) for s in campaign_specs(load_campaign(configs_dir() / "kernel-ab.yaml"))
    }
    (patched_key,) = ab_keys - {image_key(load_spec())}
    for key in (parsec_key, patched_key, "0000000000000old"):
        (images / key).mkdir(parents=True)
    assert main(["guest", "prune", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would remove {images / '0000000000000old'} (image of no kept spec)" in out
    assert parsec_key not in out and patched_key not in out
    assert main(["guest", "prune", "--dry-run", "--spec", "guest/default.yaml"]) == 0
    out = capsys.readouterr().out
    assert parsec_key in out and patched_key in out
