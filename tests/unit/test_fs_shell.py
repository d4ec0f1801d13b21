"""ShellFs runs real ``sh`` scripts (local_sh_runner) against a fake tree."""

from __future__ import annotations

import errno

import pytest
from fakekernel import ADMIN, FakeKernel

from damon_eval.damon.controller import build_kdamond
from damon_eval.damon.detect import open_backend
from damon_eval.damon.errors import DamonBusyError
from damon_eval.damon.model import Target
from damon_eval.errors import FsError
from damon_eval.fs import (
    Exists,
    ListDir,
    ListDirIfExists,
    LocalFs,
    MakeDir,
    Read,
    ReadIfExists,
    RemoveDir,
    ShellFs,
    Write,
    WriteIfExists,
    local_sh_runner,
)


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "sys").mkdir()
    (tmp_path / "sys" / "value").write_text("42\n")
    (tmp_path / "sys" / "multi").write_text("a b\nc d\n\n")
    (tmp_path / "sys" / "quote").write_text("")
    return tmp_path


def shell(tree) -> ShellFs:
    return ShellFs(local_sh_runner, root=str(tree))


def test_read_write_exists_listdir_mkdir_rmdir(tree):
    fs = shell(tree)
    results = fs.execute(
        [
            Read("/sys/value"),
            Read("/sys/multi"),
            Write("/sys/value", "7"),
            Read("/sys/value"),
            Write("/sys/quote", 'it\'s "quoted" $HOME `x`'),
            Read("/sys/quote"),
            Exists("/sys/value"),
            Exists("/sys/nope"),
            MakeDir("/sys/newdir"),
            ListDir("/sys"),
            RemoveDir("/sys/newdir"),
            Exists("/sys/newdir"),
        ]
    )
    assert results == [
        "42",
        "a b\nc d",
        None,
        "7",
        None,
        'it\'s "quoted" $HOME `x`',
        True,
        False,
        None,
        ["multi", "newdir", "quote", "value"],
        None,
        False,
    ]
    assert (tree / "sys" / "value").read_text() == "7"


@pytest.mark.parametrize(
    ("op", "code"),
    [
        (Write("/sys/missing", "1"), errno.ENOENT),
        (Read("/sys/missing"), errno.ENOENT),
        (ListDir("/sys/missing"), errno.ENOENT),
        (Write("/sys", "1"), errno.EISDIR),  # a real failing write: root ignores modes
        (MakeDir("/sys/value"), errno.EEXIST),
        (RemoveDir("/sys/missing"), errno.ENOENT),
    ],
)
def test_errors_carry_the_errno(tree, op, code):
    with pytest.raises(FsError) as info:
        shell(tree).execute([op])
    assert info.value.errno == code, str(info.value)
    assert info.value.path == op.path


def test_a_failing_write_keeps_the_kernel_errno(tree):
    # The write itself fails (not the open), as sysfs fails with EBUSY or EINVAL.
    # dash's builtin printf would report "I/O error" for any of them.
    (tree / "sys" / "full").symlink_to("/dev/full")
    with pytest.raises(FsError) as info:
        shell(tree).execute([Write("/sys/full", "on")])
    assert info.value.errno == errno.ENOSPC, str(info.value)
    assert "No space left on device" in str(info.value)


def test_batch_stops_at_the_first_failure(tree):
    fs = shell(tree)
    with pytest.raises(FsError):
        fs.execute([Write("/sys/value", "1"), Write("/sys/missing", "2"), Write("/sys/value", "3")])
    assert (tree / "sys" / "value").read_text() == "1"


def test_one_script_per_batch(tree):
    calls = []

    def counting(script: str):
        calls.append(script)
        return local_sh_runner(script)

    fs = ShellFs(counting, root=str(tree))
    fs.execute([Read("/sys/value"), Write("/sys/value", "9"), Read("/sys/value")])
    assert len(calls) == 1


def test_sysfs_backend_through_shellfs_on_a_fake_tree(tmp_path):
    # The fake kernel's reactions need its hook, so stage the tree with the fake,
    # then check that ShellFs reads the same states and refuses a busy machine.
    kernel = FakeKernel(tmp_path)
    kernel.seed_running_kdamond(pid=77)
    fs = ShellFs(local_sh_runner, root=str(tmp_path))
    backend = open_backend(fs)
    (status,) = backend.kdamonds()
    assert (status.state, status.pid, status.operations) == ("on", 77, "paddr")
    with pytest.raises(DamonBusyError, match=r"pid 77"):
        backend.start(build_kdamond("vaddr", [Target(1)])[0])
    assert kernel.read(f"{ADMIN}/kdamonds/nr_kdamonds") == "1"


def both(tree):
    """The same tree through ShellFs and LocalFs: they must agree on every batch."""
    return [shell(tree), LocalFs(root=tree)]


def test_if_exists_operations_agree_between_shell_and_local(tree):
    batch = [
        ReadIfExists("/sys/value"),
        ReadIfExists("/sys/nope"),
        WriteIfExists("/sys/quote", "x y"),
        WriteIfExists("/sys/nope", "1"),
        ListDirIfExists("/sys"),
        ListDirIfExists("/sys/nodir"),
        ReadIfExists("/sys/quote"),
    ]
    expected = ["42", None, True, False, ["multi", "quote", "value"], None, "x y"]
    for fs in both(tree):
        (tree / "sys" / "quote").write_text("")
        assert fs.execute(batch) == expected, fs.description
        assert not (tree / "sys" / "nope").exists()  # never created


def test_write_if_exists_still_fails_on_a_failing_write(tree):
    for fs in both(tree):
        with pytest.raises(FsError) as info:
            fs.execute([WriteIfExists("/sys", "1")])
        assert info.value.errno == errno.EISDIR, fs.description


def test_failure_reports_its_index_and_what_completed(tree):
    for fs in both(tree):
        (tree / "sys" / "value").write_text("42\n")
        with pytest.raises(FsError) as info:
            fs.execute(
                [
                    Read("/sys/value"),
                    Write("/sys/value", "5"),
                    ReadIfExists("/sys/nope"),
                    Write("/sys/missing", "1"),
                    Write("/sys/value", "6"),
                ]
            )
        assert info.value.index == 3, fs.description
        assert info.value.completed == ("42", None, None)
        assert (tree / "sys" / "value").read_text() == "5"


def test_read_optional_is_one_round_trip(tree):
    calls = []

    def counting(script: str):
        calls.append(script)
        return local_sh_runner(script)

    fs = ShellFs(counting, root=str(tree))
    assert fs.read_optional(["/sys/value", "/sys/nope"]) == {"/sys/value": "42", "/sys/nope": None}
    assert len(calls) == 1


def _runner_with_only(tmp_path, programs: tuple[str, ...]):
    """A local runner whose PATH holds only ``programs`` (symlinks to the real ones)."""
    import shutil
    import subprocess

    from damon_eval.fs import CommandResult

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in programs:
        (bin_dir / name).symlink_to(shutil.which(name))
    sh = shutil.which("sh")

    def runner(script: str) -> CommandResult:
        proc = subprocess.run(
            [sh, "-s"], input=script, capture_output=True, text=True, timeout=60,
            env={"PATH": str(bin_dir)},
        )  # fmt: skip
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    return runner


@pytest.mark.parametrize("shells", [("sh", "bash"), ("sh",)])
def test_reads_writes_listings_start_no_program(tree, tmp_path, shells):
    """Under TCG every exec costs ~100 ms: the success path uses shell builtins only."""
    fs = ShellFs(_runner_with_only(tmp_path, shells), root=str(tree))
    assert fs.execute(
        [
            Read("/sys/value"),
            Read("/sys/multi"),
            Write("/sys/value", "7"),
            Read("/sys/value"),
            ListDir("/sys"),
            Exists("/sys/nope"),
        ]
    ) == ["42", "a b\nc d", None, "7", ["multi", "quote", "value"], False]


def test_values_survive_exactly(tree):
    odd = {
        "spaces": "  lead and trail  \n",
        "backslash": "a\\nb \\\\ c\n",
        "blank_lines": "x\n\n\ny\n",
        "no_newline": "last line without newline",
        "carriage": "a\rb\n",
        "dollar": "$HOME `id` $(id) %s %d\n",
        "empty": "",
        ".hidden": "dot\n",
    }
    for name, text in odd.items():
        (tree / "sys" / name).write_text(text)
    fs = shell(tree)
    values = fs.execute([Read(f"/sys/{name}") for name in odd])
    assert values == [text.rstrip("\n") for text in odd.values()]
    assert set(odd) <= set(fs.listdir("/sys"))


def test_read_error_is_named(tree):
    with pytest.raises(FsError) as info:
        shell(tree).read("/sys")
    assert info.value.errno == errno.EISDIR, str(info.value)


def test_write_errno_with_dash_alone_is_not_guessed(tree, tmp_path):
    # Without bash the write still fails cleanly; dash's "I/O error" names no errno.
    (tree / "sys" / "full").symlink_to("/dev/full")
    fs = ShellFs(_runner_with_only(tmp_path, ("sh", "base64", "tr", "cat")), root=str(tree))
    with pytest.raises(FsError) as info:
        fs.execute([Write("/sys/full", "on"), Write("/sys/value", "9")])
    assert info.value.errno is None and "I/O error" in str(info.value)
    assert (tree / "sys" / "value").read_text() == "42\n"


def test_file_that_fails_short_reads_is_read_whole(tree):
    # debugfs damon/schemes (6.12) fails reads shorter than its text with ENOMEM, and
    # bash's `read` reads byte by byte: the value must come from a whole-file read.
    def runner(script: str):
        # Shadow the builtin in the inner shell the script execs.
        return local_sh_runner(script.replace("_END'\n", "_END'\nread() { return 1; }\n", 1))

    fs = ShellFs(runner, root=str(tree))
    assert fs.execute([Read("/sys/value"), Read("/sys/multi"), Read("/sys/quote")]) == [
        "42",
        "a b\nc d",
        "",
    ]
