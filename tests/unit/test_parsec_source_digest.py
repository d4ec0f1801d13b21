"""source_digest: one digest for a PARSEC's content, whether given as a tree or as any
tarball of it (with or without a top directory), so neither upload nor build is redone."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile

import pytest
from parsec_tree import fake_parsec_tree

from damon_eval.errors import ConfigError
from damon_eval.workloads import parsec_source
from damon_eval.workloads.parsec_source import source_digest

FORMS = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.zst")
TAR_FLAGS = {
    ".tar": [],
    ".tar.gz": ["-z"],
    ".tgz": ["-z"],
    ".tar.xz": ["-J"],
    ".tar.zst": ["--zstd"],
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))


def _tree(root):
    """The fake tree plus what a real one holds besides plain files: symlinks (to a file and
    to a directory), an empty directory and a fifo (neither is content)."""
    fake_parsec_tree(root, "simsmall")
    (root / "bin" / "parsecperf").symlink_to("parsecmgmt")
    (root / "cfg").symlink_to("config")
    (root / "empty").mkdir()
    os.mkfifo(root / "bin" / "fifo")
    return root


def _pack(tree, tarball, top):
    """GNU tar, as a user packs PARSEC: ``top-dir/...`` or ``./...`` members."""
    if tarball.name.endswith(".zst") and shutil.which("zstd") is None:
        pytest.skip("zstd is not installed on this host")
    where = ["-C", str(tree.parent), tree.name] if top else ["-C", str(tree), "."]
    subprocess.run(["tar", *TAR_FLAGS[next(f for f in FORMS if tarball.name.endswith(f))],
                    "-cf", str(tarball), *where], check=True)  # fmt: skip
    return tarball


def _fresh_digest(path, tmp_path, monkeypatch, name):
    """The digest computed from the bytes, not read from an earlier memo (a file rewritten
    within one timestamp tick keeps its stat signature)."""
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / f"cache-{name}"))
    return source_digest(path)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("top", [True, False], ids=["top-dir", "no-top-dir"])
def test_every_tarball_form_has_the_digest_of_its_tree(tmp_path, form, top):
    tree = _tree(tmp_path / "src" / "parsec-3.0")
    tarball = _pack(tree, tmp_path / f"parsec-3.0{form}", top)
    digest = source_digest(tree)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert source_digest(tarball) == digest


def test_a_byte_an_exec_bit_or_a_symlink_target_changes_the_digest(tmp_path, monkeypatch):
    tree = _tree(tmp_path / "parsec-3.0")
    original = _fresh_digest(tree, tmp_path, monkeypatch, "original")
    changes = {
        "byte": lambda: (tree / "version").write_text("3.0-beta-20150207\n"),  # same size
        "exec bit": lambda: (tree / "config" / "gcc.bldconf").chmod(0o744),
        "symlink target": lambda: (
            (tree / "bin" / "parsecperf").unlink(),
            (tree / "bin" / "parsecperf").symlink_to("parsecmgmX"),
        ),
        "symlink to a directory": lambda: (
            (tree / "cfg").unlink(),
            (tree / "cfg").symlink_to("bin"),
        ),
    }
    seen = {original}
    for name, change in changes.items():
        change()
        changed = _fresh_digest(tree, tmp_path, monkeypatch, name)
        assert changed not in seen, f"changing a {name} kept the digest"
        seen.add(changed)
        # ... and a tarball of the changed tree follows it
        tarball = _pack(tree, tmp_path / f"{name.replace(' ', '-')}.tar.gz", top=True)
        assert _fresh_digest(tarball, tmp_path, monkeypatch, f"{name}-tar") == changed


def test_the_top_directory_is_stripped_only_when_it_holds_the_parsec_root(tmp_path):
    """Whatever its name, as the guest's unpack moves it; a top directory without
    bin/parsecmgmt is content (the guest refuses that archive)."""
    tree = _tree(tmp_path / "src" / "parsec-3.0")
    renamed = tree.rename(tmp_path / "src" / "parsec")
    digest = source_digest(renamed)
    assert source_digest(_pack(renamed, tmp_path / "renamed.tar", top=True)) == digest
    (renamed / "bin" / "parsecmgmt").unlink()
    without = source_digest(renamed)
    assert source_digest(_pack(renamed, tmp_path / "without.tar", top=True)) != without
    assert source_digest(_pack(renamed, tmp_path / "flat.tar", top=False)) == without


def _add_bytes(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("prefix", ["parsec-3.0/", "./", ""])
def test_a_hard_link_in_a_tarball_is_its_targets_content(tmp_path, prefix):
    tree = tmp_path / "parsec-3.0"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "parsecmgmt").write_text("#!/bin/sh\n")
    (tree / "bin" / "parsecmgmt").chmod(0o755)
    (tree / "bin" / "alias").write_text("#!/bin/sh\n")  # in the tree, a plain copy
    (tree / "bin" / "alias").chmod(0o755)
    tarball = tmp_path / "linked.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        _add_bytes(tar, f"{prefix}bin/parsecmgmt", b"#!/bin/sh\n", 0o755)
        link = tarfile.TarInfo(f"{prefix}bin/alias")
        link.type, link.linkname, link.mode = tarfile.LNKTYPE, f"{prefix}bin/parsecmgmt", 0o644
        tar.addfile(link)
    assert source_digest(tarball) == source_digest(tree)
    # GNU tar stores a hard-linked tree's second name as a link too
    (tree / "bin" / "alias").unlink()
    os.link(tree / "bin" / "parsecmgmt", tree / "bin" / "alias")
    packed = _pack(tree, tmp_path / "gnu.tar.xz", top=True)
    listed = subprocess.run(["tar", "-tvJf", str(packed)], capture_output=True, text=True)
    assert " link to " in listed.stdout
    assert source_digest(packed) == source_digest(tarball)


def test_a_hard_link_to_a_member_not_in_the_archive_is_refused(tmp_path):
    tarball = tmp_path / "dangling.tar"
    with tarfile.open(tarball, "w") as tar:
        _add_bytes(tar, "bin/parsecmgmt", b"")
        link = tarfile.TarInfo("bin/alias")
        link.type, link.linkname = tarfile.LNKTYPE, "bin/missing"
        tar.addfile(link)
    with pytest.raises(ConfigError, match=r"hard link bin/alias to bin/missing"):
        source_digest(tarball)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("cut", [0.5, 0.5 + 100 / 1e6, -1024], ids=["half", "mid-block", "end"])
def test_a_truncated_tarball_is_a_config_error(tmp_path, form, cut):
    """A partial download is refused, not given a digest of what it holds (tarfile's stream
    mode alone ends quietly at a cut header)."""
    tree = _tree(tmp_path / "parsec-3.0")
    good = _pack(tree, tmp_path / f"good{form}", top=True).read_bytes()
    bad = tmp_path / f"bad{form}"
    length = len(good) + cut if cut < 0 else int(len(good) * cut)
    if form == ".tar" and cut < 0:
        length = 512 * ((len(good) - 10240) // 512)  # a plain tar cut at a block boundary
    bad.write_bytes(good[:length])
    with pytest.raises(ConfigError, match=str(bad)):
        source_digest(bad)
    assert source_digest(tmp_path / f"good{form}") == source_digest(tree)


def test_an_unchanged_input_is_hashed_once(tmp_path, monkeypatch):
    tree = _tree(tmp_path / "parsec-3.0")
    tarball = _pack(tree, tmp_path / "parsec-3.0.tar.gz", top=True)
    first = (source_digest(tree), source_digest(tarball))

    def unexpected(*args):
        raise AssertionError("hashed again although unchanged")

    monkeypatch.setattr(parsec_source, "_tree_records", unexpected)
    monkeypatch.setattr(parsec_source, "_tarball_records", unexpected)
    assert (source_digest(tree), source_digest(tarball)) == first
    # A first-format memo entry (the tarball's bytes) is not reused.
    memos = sorted(p.name for p in (tmp_path / "cache" / "parsec" / "memo").iterdir())
    assert memos and all(name.startswith("digest2-") for name in memos)
