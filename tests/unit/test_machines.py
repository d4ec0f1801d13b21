"""The machines layer: the Machine protocol, choosing a machine from the command line,
open_machine's checks, one agent preparation, one owner of system settings."""

from __future__ import annotations

import argparse
import os
import select
import socket
import sys
from pathlib import Path

import pytest
from fakekernel import FakeKernel

from damon_eval.agent.build import AGENT_SOURCE_PATH, GUEST_AGENT_SOURCE_PATH, guest_build_script
from damon_eval.agent.preparation import agent_preparation
from damon_eval.commands._target import FRESH_GUEST, add_target_arguments, machine_selector
from damon_eval.config.configuration import RunConfiguration
from damon_eval.errors import ConfigError, DamonBusyError, GuestError
from damon_eval.fs import LocalFs, Write
from damon_eval.guest.machine import Guest
from damon_eval.machine_select import MachineSelector, open_machine
from damon_eval.machines.local import LocalMachine
from damon_eval.machines.page_cache import DROP_CACHES_COMMAND
from damon_eval.machines.protocol import Machine
from damon_eval.machines.remote import RemoteMachine
from damon_eval.measure import system
from damon_eval.workloads.base import PreparePlan, Upload

PROTOCOL_MEMBERS = {"name", "run", "run_script", "fs", "put", "get", "facts", "is_alive",
                    "disconnect", "control"}  # fmt: skip


def _members(cls: type) -> set[str]:
    annotated = {n for klass in cls.__mro__ for n in getattr(klass, "__annotations__", {})}
    return {m for m in dir(cls) if not m.startswith("_")} | annotated


def test_protocol_is_what_run_and_record_use():
    assert _members(Machine) == PROTOCOL_MEMBERS


@pytest.mark.parametrize("kind", [LocalMachine, RemoteMachine, Guest])
def test_every_kind_of_machine_has_the_protocol(kind):
    assert PROTOCOL_MEMBERS - _members(kind) == set()


def test_a_local_machine_is_a_machine(tmp_path):
    assert isinstance(LocalMachine(tmp_path), Machine)


# ------------------------------------------------------------- selecting


def _args(*argv: str, fresh_guest: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    group = add_target_arguments(parser)
    if fresh_guest:  # `record`'s --guest takes no name for a fresh guest
        parser._option_string_actions["--guest"].nargs = "?"
        parser._option_string_actions["--guest"].const = FRESH_GUEST
    del group
    return parser.parse_args(argv)


def test_selector_from_the_target_options(tmp_path):
    assert machine_selector(_args()).kind == "local"
    tree = machine_selector(_args("--root", str(tmp_path)))
    assert (tree.kind, tree.root, tree.describe()) == ("tree", tmp_path, f"tree {tmp_path}")
    guest = machine_selector(_args("--guest", "g1"))
    assert (guest.kind, guest.guest_name, guest.describe()) == ("guest", "g1", "guest g1")
    assert machine_selector(_args("--guest", fresh_guest=True)).kind == "fresh-guest"
    remote = machine_selector(_args("--ssh", "me@box:2222"), poll_interval_s=3.0)
    assert remote.kind == "ssh" and remote.persistent
    assert str(remote.remote.spec) == "me@box:2222" and remote.remote.poll_interval_s == 3.0


def test_selector_errors_name_the_bad_value(tmp_path):
    with pytest.raises(ConfigError, match=r"--root '.*nosuch' is not a directory"):
        machine_selector(_args("--root", str(tmp_path / "nosuch")))
    with pytest.raises(ConfigError, match="--known-hosts only apply with --ssh"):
        machine_selector(_args("--known-hosts", str(tmp_path / "kh")))


def test_work_dir_is_kept_by_with_work_dir(tmp_path):
    selector = MachineSelector.fresh_guest().with_work_dir(tmp_path)
    assert selector.kind == "fresh-guest" and selector.work_dir == tmp_path


# ------------------------------------------------------------- opening


def test_reading_a_busy_machine_is_fine_preparing_it_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    kernel = FakeKernel(tmp_path / "machine")
    kernel.seed_running_kdamond(pid=77)
    selector = MachineSelector.tree(kernel.root)
    with open_machine(selector) as machine:
        assert machine.fs.exists("/sys/kernel/mm/damon/admin/kdamonds/0")
    with (
        pytest.raises(DamonBusyError, match=r"kdamond 0 \(pid 77, paddr\)"),
        open_machine(selector, agent_preparation()),
    ):
        pytest.fail("a busy machine is never handed out for a run")
    assert kernel.writes == []


def test_kdamond_threads_in_the_tree_proc_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    kernel = FakeKernel(tmp_path / "machine")
    (kernel.root / "proc" / "4242").mkdir(parents=True)
    (kernel.root / "proc" / "4242" / "comm").write_text("kdamond.0\n")
    selector = MachineSelector.tree(kernel.root).with_work_dir(tmp_path / "run")
    with (
        pytest.raises(DamonBusyError, match=r"kdamond\.0 \(pid 4242\)"),
        open_machine(selector, agent_preparation()),
    ):
        pytest.fail("a busy machine is never handed out for a run")


def test_an_unknown_guest_names_the_running_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    with (
        pytest.raises(GuestError, match=r"no guest named 'nosuch'.*running guests: none"),
        open_machine(MachineSelector.attached_guest("nosuch")),
    ):
        pytest.fail("no such guest")


# ------------------------------------------------------------ preparation


def test_agent_preparation_alone_uploads_and_builds_the_agent():
    prep = agent_preparation()
    assert prep.uploads == ((AGENT_SOURCE_PATH, GUEST_AGENT_SOURCE_PATH),)
    assert prep.commands == (guest_build_script(),)


def test_agent_preparation_adds_workloads_once_and_then_commands(tmp_path):
    archive = tmp_path / "inputs.tar"
    archive.write_bytes(b"")
    shared = tmp_path / "parsec.tar"
    shared.write_bytes(b"")
    first = PreparePlan(
        uploads=(Upload(archive, "/opt/damon-eval/w1", extract=True),
                 Upload(shared, "/opt/damon-eval/parsec.tar")),
        commands=("echo one",),
    )  # fmt: skip
    second = PreparePlan(uploads=(Upload(shared, "/opt/damon-eval/parsec.tar"),), stamp="/s")
    prep = agent_preparation([first, second], then=("echo last",))
    assert [dest for _, dest in prep.uploads] == [
        GUEST_AGENT_SOURCE_PATH,
        "/var/tmp/damon-eval/upload/inputs.tar",
        "/opt/damon-eval/parsec.tar",
    ]
    assert prep.commands[0] == guest_build_script()
    assert prep.commands[1].startswith("mkdir -p /opt/damon-eval/w1 && tar -xf ")
    assert "echo one" in prep.commands[2] and "/s" in prep.commands[3]
    assert prep.commands[-1] == "echo last"
    assert prep.timeout_s > agent_preparation().timeout_s  # builds from source take long


def test_record_and_run_share_the_preparation_of_a_workload():
    from damon_eval.config.campaign import campaign_from_dict
    from damon_eval.measure.plan import campaign_preparation
    from damon_eval.measure.recording import RecordTarget, record_preparation

    campaign = campaign_from_dict(
        {"campaign": "record", "workloads": ["synthetic/zigzag"], "configs": ["orig"],
         "workload_scale": 0.5},
        "<test>",
    )  # fmt: skip
    target = RecordTarget("workload", workload="synthetic/zigzag", scale=0.5)
    prep = campaign_preparation(campaign)
    assert record_preparation(target).digest() == prep.digest()
    assert prep.commands[-1] == DROP_CACHES_COMMAND
    agent_only = record_preparation(RecordTarget("command", command=("true",)))
    assert prep.commands[: len(agent_only.commands)] == agent_only.commands


# --------------------------------------------------------- system settings

THP = system.THP_ENABLED


class ThpFs(LocalFs):
    """A tree whose THP file selects what is written, as the kernel's does."""

    def execute(self, ops):
        results = []
        for op in ops:
            if isinstance(op, Write) and op.path == THP and op.value in ("always", "madvise"):
                modes = ("always", "madvise", "never")
                text = " ".join(f"[{m}]" if m == op.value else m for m in modes)
                self.host_path(THP).write_text(text + "\n")
                results.append(None)
            else:
                results.extend(super().execute([op]))
        return results


def _configuration(**settings) -> RunConfiguration:
    base = {"thp": "madvise", "swap": None, "damon": None, "damon_module": None}
    return RunConfiguration("test", Path("test.yaml"), {**base, **settings})


def _tree(tmp_path: Path) -> LocalMachine:
    (tmp_path / THP.lstrip("/")).parent.mkdir(parents=True)
    (tmp_path / THP.lstrip("/")).write_text("[always] madvise never\n")
    return LocalMachine(tmp_path, fs=ThpFs(root=tmp_path))


def test_system_settings_set_thp_and_damon_module_parameters(tmp_path):
    machine = _tree(tmp_path)
    params = tmp_path / "sys/module/damon_reclaim/parameters"
    params.mkdir(parents=True)
    for name, value in (("min_age", "120000000"), ("enabled", "N")):
        (params / name).write_text(value + "\n")
    module = {"name": "reclaim", "parameters": {"min_age": 5000000}}
    applied = system.apply_system_settings(machine, _configuration(damon_module=module))
    assert applied["thp_enabled"] == "always [madvise] never"
    assert (params / "min_age").read_text().strip() == "5000000"
    assert (params / "enabled").read_text().strip() == "Y"


def test_system_settings_that_do_not_stick_are_errors(tmp_path):
    machine = _tree(tmp_path)
    with pytest.raises(system.SystemSettingError, match="THP policy 'never' did not stick"):
        system.apply_system_settings(machine, _configuration(thp="never"))
    module = {"name": "lru_sort", "parameters": {}}
    with pytest.raises(system.SystemSettingError, match=r"has no DAMON_LRU_SORT"):
        system.apply_system_settings(machine, _configuration(damon_module=module))


# ---------------------------------------------------------------- terminal


class FakeShellChannel:
    """A paramiko channel whose shell prints a line, reads input, exits 3 at EOF."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.sent = b""
        self.pty: tuple[str, int, int] | None = None
        self.exited = False

    def fileno(self) -> int:
        return self.ours.fileno()

    def get_pty(self, term: str, width: int, height: int) -> None:
        self.pty = (term, width, height)

    def invoke_shell(self) -> None:
        self.theirs.sendall(b"prompt$ ")

    def recv_ready(self) -> bool:
        return bool(select.select([self.ours], [], [], 0)[0])

    def recv(self, size: int) -> bytes:
        return self.ours.recv(size)

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def shutdown_write(self) -> None:
        self.exited = True

    def exit_status_ready(self) -> bool:
        return self.exited

    def recv_exit_status(self) -> int:
        return 3

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


def test_terminal_relays_both_ways_and_returns_the_exit_status(tmp_path, monkeypatch):
    from damon_eval.machines.terminal import relay_terminal

    stdin_read, stdin_write = os.pipe()
    os.write(stdin_write, b"uname\n")
    os.close(stdin_write)
    channel = FakeShellChannel()
    checks = []
    with os.fdopen(stdin_read, "rb") as stdin, (tmp_path / "out").open("wb") as out:
        monkeypatch.setattr(sys, "stdin", stdin)
        monkeypatch.setattr(sys, "stdout", out)
        assert relay_terminal(channel, lambda: checks.append(1)) == 3
    assert channel.sent == b"uname\n" and channel.pty[1:] == (80, 24)  # not a tty: 80x24
    assert (tmp_path / "out").read_bytes() == b"prompt$ "
    assert checks, "the machine is checked while the shell runs"
