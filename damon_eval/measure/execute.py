"""Steps 3-5 of a run (see :mod:`damon_eval.measure.run`) on a started machine:
system settings, the agent started detached, the held target checked, DAMON on,
``go``, ``done``, DAMON off, the agent's files fetched.
"""

from __future__ import annotations

import base64
import contextlib
import io
import shlex
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from damon_eval.config.configuration import RunConfiguration
from damon_eval.damon.controller import (
    DamonController,
    DamonSession,
    OwnershipRegistry,
    build_kdamond,
)
from damon_eval.damon.iomem import IOMEM_PATH, system_ram_target
from damon_eval.damon.model import Target
from damon_eval.damon.tracing import TraceInstance, find_tracefs
from damon_eval.errors import DamonEvalError
from damon_eval.fs import FileSystem
from damon_eval.machines.protocol import Machine, is_persistent, localize
from damon_eval.measure import noise, system
from damon_eval.measure.link import LinkFailure, agent_link
from damon_eval.measure.noise import NoiseSettings
from damon_eval.measure.plan import GUEST_RUN_DIR, Failure, PhaseClock, RunPlan
from damon_eval.workloads.truth import TRUTH_FILE_NAME

SYSFS_DAMON = "/sys/kernel/mm/damon/admin/kdamonds"
# Files the agent writes that the host keeps.
AGENT_FILES = ("samples.csv", "status", "runtime", "events.log", "workload.log", "target.pid")
DONE_MARGIN_S = 180.0
# Ring buffer of our tracefs instance, per CPU: the agent drains it continuously
# (~15 KB/s of events at the default intervals), so 256 KiB holds many seconds,
# and the kernel memory recording costs stays small (the default is 1408 KiB/CPU).
TRACE_BUFFER_KIB_PER_CPU = 256


@contextlib.contextmanager
def damon_for_run(
    guest: Machine, configuration: RunConfiguration, target_pid: int, registry_path: Path
) -> Iterator[tuple[DamonSession | None, TraceInstance | None]]:
    """Start the configuration's DAMON context on the workload (or System RAM),
    with a trace instance when it records; always turn both off."""
    damon = configuration.damon
    if not damon:
        yield None, None
        return
    fs: FileSystem = guest.fs
    attrs = configuration.monitoring_attrs()
    paddr = damon["operations"] == "paddr"
    controller = DamonController(fs, registry=OwnershipRegistry(registry_path))
    # One round trip reads DAMON's state, tracefs and /proc/iomem; the start uses it.
    probe = controller.probe(reads=(IOMEM_PATH,) if paddr else ())
    if paddr:
        targets = [system_ram_target(fs, text=probe.file(IOMEM_PATH))]
    else:
        targets = [Target(pid=target_pid)]
    kdamond, resolved = build_kdamond(
        damon["operations"], targets, attrs=attrs, resolved=configuration.schemes
    )
    with contextlib.ExitStack() as stack:
        instance = None
        if damon["record"]:
            instance = stack.enter_context(
                TraceInstance(fs, probe.tracefs, buffer_size_kb=TRACE_BUFFER_KIB_PER_CPU)
            )
        session = stack.enter_context(
            controller.session(
                kdamond, schemes=resolved, handle_signals=is_persistent(guest), probe=probe
            )
        )
        yield session, instance


# Streamed with SFTP: a record can be large; everything else comes in one tar.
LARGE_FILES = frozenset({"trace.txt"})


def _fetch(guest: Machine, names: tuple[str, ...], local_dir: Path) -> dict[str, int]:
    """Copy the agent's files that exist from the guest run directory: the
    small ones in one command (one tar, base64 on stdout), large ones by SFTP.
    Returns facts seen on the way (the record's page cache in bytes)."""
    small = " ".join(shlex.quote(n) for n in names if n not in LARGE_FILES)
    script = (
        f"cd {GUEST_RUN_DIR} 2>/dev/null || exit 0\n"
        f'set --\nfor f in {small}; do [ -f "$f" ] && set -- "$@" "$f"; done\n'
        "for f in " + " ".join(sorted(LARGE_FILES)) + '; do [ -f "$f" ] && echo "large $f"; done\n'
        '[ $# -eq 0 ] || { echo tar; tar -cf - -- "$@" | base64 -w 0; echo; }\n'
        # page cache still held by the record in the guest (the agent drops it as it writes)
        '[ ! -f trace.txt ] || echo "cached $(fincore -b -n -o RES trace.txt)"\n'
    )
    result = guest.run_script(script, timeout_s=120)
    if result.exit_status != 0:
        raise Failure("harness", f"cannot collect the run's files: {result.stderr.strip()[-300:]}")
    lines = result.stdout.splitlines()
    if "tar" in lines:
        payload = lines[lines.index("tar") + 1]
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(payload))) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name in names and "/" not in member.name:
                    (local_dir / member.name).write_bytes(archive.extractfile(member).read())
    facts: dict[str, int] = {}
    for line in lines:
        if line.startswith("large "):
            name = line.split(" ", 1)[1]
            if name in names:
                guest.get(f"{GUEST_RUN_DIR}/{name}", local_dir / name)
        elif line.startswith("cached ") and line.split()[-1].isdigit():
            facts["record_page_cache_bytes"] = int(line.split()[-1])
    return facts


def _start_agent(guest: Machine, plan: RunPlan, record: bool, link: Any, drop_caches: bool) -> None:
    campaign = plan.request.campaign
    invocation = plan.workload.agent_invocation(
        plan.context,
        plan.params,
        interval_ms=int(campaign.settings["sample_interval_ms"]),
        control=link.control_path,
        timeout_s=float(campaign.settings["run_timeout_s"]),
        wait_timeout_s=300,
        trace_pipe=f"{find_tracefs(guest.fs)}/instances/damon-eval/trace_pipe" if record else None,
        record=f"{GUEST_RUN_DIR}/trace.txt" if record else None,
        drop_caches=drop_caches,
        detach=True,
    )
    script = (
        f"set -e\nrm -rf {GUEST_RUN_DIR}\nmkdir -p {GUEST_RUN_DIR}\n"
        f"{link.setup_script()}{invocation.shell()}\n"
    )
    # Machines other than guests keep the agent and workloads elsewhere (localize).
    result = guest.run_script(localize(guest, script), timeout_s=60)
    if result.exit_status != 0:
        raise Failure(
            "harness",
            f"the agent did not start (exit {result.exit_status}): "
            f"{(result.stderr or result.stdout).strip()[-300:]}",
        )
    link.started(result.stdout)


def held_target(guest: Machine, pid: int, plan: RunPlan) -> dict[str, Any]:
    """The process DAMON is about to target (held before its first instruction): its
    comm and executable.  Under a launcher (hold="child": parsecmgmt, run.sh) it must
    be the benchmark binary itself, or the run would measure a shell."""
    run_plan = plan.workload.run_plan(plan.context, plan.params)
    probe = guest.run(
        f"cat /proc/{pid}/comm; readlink /proc/{pid}/exe || true", timeout_s=30
    ).stdout.splitlines()
    comm = probe[0].strip() if probe else ""
    target = {"pid": pid, "comm": comm, "exe": probe[1].strip() if len(probe) > 1 else ""}
    # The kernel keeps 15 characters of a comm.
    if run_plan.hold == "child" and comm != run_plan.target[:15]:
        raise Failure(
            "harness",
            f"the held process {pid} is {comm!r} ({target['exe']}), not the benchmark "
            f"{run_plan.target!r}: DAMON would monitor the wrong process",
        )
    return target


def execute_in_guest(
    plan: RunPlan, guest: Machine, work_dir: Path, parts: dict[str, Any], clock: PhaseClock
) -> None:
    """Steps 3-5 on a started guest.  ``parts`` collects the result's pieces as
    they become known, so a failure still reports what was set up."""
    configuration = plan.configuration
    record = configuration.records
    parts["facts"] = guest.facts()
    wanted = (*AGENT_FILES, "agent.log", TRUTH_FILE_NAME, *(("trace.txt",) if record else ()))
    # The guest's virtio-serial port, or a FIFO polled over SSH on other machines.
    link = agent_link(guest, GUEST_RUN_DIR)
    try:
        parts["system"] = system.apply_system_settings(guest, configuration)
        settings = NoiseSettings.from_campaign(plan.request.campaign.settings)
        boot_kind = parts["facts"].get("boot_kind")
        drop, why_not = settings.step("drop_caches", boot_kind)
        compact, why_not_compact = settings.step("compact_memory", boot_kind)
        steps = parts.setdefault("noise", {})
        steps["drop_caches"] = {"setting": settings.drop_caches, "applied": drop}
        if drop:
            steps["drop_caches"]["where"] = "de-agent --drop-caches: sync, drop, before sample 0"
        else:
            steps["drop_caches"]["reason"] = why_not
        if compact:
            steps["compact_memory"] = system.settle_memory(
                guest, drop_caches=drop, compact_memory=True
            )
        else:
            steps["compact_memory"] = {"applied": False, "reason": why_not_compact}
        steps["compact_memory"]["setting"] = settings.compact_memory
        steps["clock"] = noise.clock_facts(
            parts["facts"].get("boot_kind"), parts["system"].get("clocksource")
        )
        version_probe = plan.workload.version_probe()
        if version_probe:
            parts["workload_versions"] = guest.run(version_probe, timeout_s=60).stdout.strip()
        build_check = plan.workload.build_check(plan.context)
        if build_check:
            checked = guest.run(build_check, timeout_s=60)
            if checked.exit_status != 0:
                lines = checked.stdout.strip().splitlines()
                raise Failure("build", lines[0] if lines else "build failed", "\n".join(lines[1:]))
        _start_agent(guest, plan, record, link, drop)
        try:
            ready_pid = link.wait_ready(timeout_s=120)
            parts["target"] = held_target(guest, ready_pid, plan)
            clock.lap("setup")
            registry_path = work_dir / "owned-kdamonds.json"
            with damon_for_run(guest, configuration, ready_pid, registry_path) as (session, trace):
                go: dict[str, Any] = {}
                if session is not None:
                    go["kdamond_dir"] = f"{SYSFS_DAMON}/{session.handle.index}"
                    parts["damon"] = session.to_dict()
                if trace is not None:
                    # What recording costs the guest: the instance's ring buffers (kernel
                    # memory, allocated before sample 0) and, below, the record's page cache.
                    ring_kib = guest.fs.read(f"{trace.path}/buffer_total_size_kb")
                    parts["recording"] = {"ring_buffer_kib": int(ring_kib.split()[0])}
                clock.lap("damon_on")
                timeout_s = float(plan.request.campaign.settings["run_timeout_s"]) + DONE_MARGIN_S
                try:
                    # Nothing of ours but the agent stays on the machine while the workload runs.
                    link.go(**go)
                    # A vaddr kdamond stops by itself when its target exits: its final
                    # scheme stats are the agent's last sample, not read here.
                    parts["done"] = link.wait_done(timeout_s)
                except BaseException:
                    # On a machine that stays up the workload must not outlive the run, and
                    # the agent must release the trace instance before it is removed.
                    if is_persistent(guest):
                        link.abort()
                    raise
                clock.lap("workload")
            clock.lap("damon_off")
        except LinkFailure as failure:
            raise Failure(failure.kind, str(failure)) from failure
        finally:
            link.close()
    except BaseException:
        # Keep whatever the agent wrote: it says why.
        if guest.is_alive():
            with contextlib.suppress(DamonEvalError, OSError):
                _fetch(guest, wanted, work_dir)
        raise
    # Synthetic workloads write their ground truth next to the agent's files.
    fetched = _fetch(guest, wanted, work_dir)
    if "recording" in parts:
        parts["recording"].update(fetched)
    clock.lap("collect")
