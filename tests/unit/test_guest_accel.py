"""Accelerator choice (probe results mocked) and the probe's verdicts and cache."""

from __future__ import annotations

import pytest

from damon_eval.errors import GuestError
from damon_eval.guest import accel
from damon_eval.guest.accel import ProbeResult, choose_accel, judge_probe


def _probe(ok: bool, calls: list[int] | None = None):
    def probe() -> ProbeResult:
        if calls is not None:
            calls.append(1)
        return ProbeResult(ok, "works" if ok else "MSR refused")

    return probe


def test_tcg_request_never_probes():
    calls: list[int] = []
    choice = choose_accel("tcg", _probe(True, calls))
    assert choice.accel == "tcg" and choice.warning is None
    assert calls == []


def test_auto_uses_kvm_when_the_probe_works():
    choice = choose_accel("auto", _probe(True))
    assert choice.accel == "kvm" and choice.warning is None


def test_auto_falls_back_to_tcg_with_a_warning():
    choice = choose_accel("auto", _probe(False))
    assert choice.accel == "tcg"
    assert "MSR refused" in choice.warning and "TCG" in choice.warning


def test_kvm_request_fails_when_kvm_does_not_work():
    with pytest.raises(GuestError, match=r"KVM was requested.*MSR refused.*--accel tcg"):
        choose_accel("kvm", _probe(False))
    assert choose_accel("kvm", _probe(True)).accel == "kvm"


def test_unknown_accelerator():
    with pytest.raises(GuestError, match="valid: auto, kvm, tcg"):
        choose_accel("xen", _probe(True))


def test_judge_probe_verdicts():
    booted = "[    0.000000] Linux version 6.12\n...\nKernel panic - not syncing: No init\n"
    assert judge_probe(0, booted, "").ok
    # QEMU aborted at once (what this machine's /dev/kvm does with stock kernels).
    aborted = judge_probe(-6, "", "error: failed to set MSR 0x10a to 0x69\nAssertion failed\n")
    assert not aborted.ok and "MSR 0x10a" in aborted.reason
    hung = judge_probe(None, "", "KVM internal error. Suberror: 1\n")
    assert not hung.ok and "KVM internal error" in hung.reason
    # Exited cleanly without running the kernel: not a working KVM either.
    assert not judge_probe(0, "", "").ok


def test_probe_result_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path))
    monkeypatch.setattr(accel, "kvm_device_usable", lambda: ProbeResult(True, "usable"))
    calls: list[str] = []

    def runner(qemu_binary, kernel, initrd):
        calls.append(qemu_binary)
        return ProbeResult(False, "refused")

    args = ("qemu", "7.2.22", tmp_path / "vmlinuz", tmp_path / "initrd.img")
    first = accel.cached_probe(*args, "build-a", runner=runner)
    second = accel.cached_probe(*args, "build-a", runner=runner)
    assert first == second == ProbeResult(False, "refused")
    assert calls == ["qemu"]
    # Another image build (or QEMU version) probes again.
    accel.cached_probe(*args, "build-b", runner=runner)
    accel.cached_probe("qemu", "8.0", args[2], args[3], "build-a", runner=runner)
    assert len(calls) == 3


def test_missing_kvm_device_is_not_probed_nor_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path))
    monkeypatch.setattr(
        accel, "kvm_device_usable", lambda: ProbeResult(False, "/dev/kvm does not exist")
    )

    def runner(*args):
        raise AssertionError("must not probe without /dev/kvm")

    result = accel.cached_probe("qemu", "7.2", tmp_path, tmp_path, "b", runner=runner)
    assert not result.ok and "/dev/kvm" in result.reason
    assert not (tmp_path / "accel").exists()


def test_kvm_device_usable(tmp_path):
    assert not accel.kvm_device_usable(tmp_path / "kvm").ok
    device = tmp_path / "kvm"
    device.write_text("")
    assert accel.kvm_device_usable(device).ok
