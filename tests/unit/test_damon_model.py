"""The typed model: validation, JSON round trips, units and the paddr default target."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from fakekernel import FakeKernel

from damon_eval.damon import units
from damon_eval.damon.errors import DamonError, DamonPermissionError
from damon_eval.damon.iomem import largest_system_ram, parse_system_ram, system_ram_target
from damon_eval.damon.model import (
    UINT_MAX,
    AccessPattern,
    Context,
    Filter,
    Kdamond,
    MonitoringAttrs,
    Quotas,
    Region,
    Scheme,
    Target,
    Watermarks,
)
from damon_eval.damon.sysfs_layout import scheme_sysfs_files
from damon_eval.errors import ConfigError


def full_kdamond() -> Kdamond:
    scheme = Scheme(
        action="pageout",
        access_pattern=AccessPattern(4096, 1 << 30, 0, 1, 70, UINT_MAX),
        quotas=Quotas(10, 1 << 20, 1000, 1, 2, 3),
        watermarks=Watermarks("free_mem_rate", 1000, 500, 400, 300),
        filters=(Filter("memcg", memcg_path="/x"), Filter("target", target_idx=1, allow=True)),
        apply_interval_us=5000,
    )
    context = Context(
        "fvaddr",
        attrs=MonitoringAttrs(1000, 20000, 500000, 5, 50),
        targets=(Target(10, (Region(0, 4096), Region(8192, 1 << 20))),),
        schemes=(scheme,),
    )
    return Kdamond((context,))


def test_json_round_trip():
    kdamond = full_kdamond()
    assert Kdamond.from_dict(json.loads(json.dumps(kdamond.to_dict()))) == kdamond


def test_defaults_are_the_seeds():
    attrs = MonitoringAttrs()
    assert (attrs.sample_us, attrs.aggr_us, attrs.update_us) == (5000, 100000, 1000000)
    assert (attrs.min_nr_regions, attrs.max_nr_regions) == (10, 1000)
    assert attrs.max_nr_accesses == 20


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: MonitoringAttrs(sample_us=0), "sample_us=0 is out of range"),
        (lambda: MonitoringAttrs(sample_us=200000), "must be <= aggr_us"),
        (lambda: MonitoringAttrs(min_nr_regions=2), "min_nr_regions=2 is out of range; valid: 3"),
        (lambda: MonitoringAttrs(min_nr_regions=20, max_nr_regions=10), "must be <="),
        (lambda: Region(10, 10), "start=10 must be < end=10"),
        (lambda: Target(5, (Region(0, 10), Region(5, 20))), "must not overlap"),
        (lambda: AccessPattern(sz_min=5, sz_max=4), "sz_min=5 must be <= sz_max=4"),
        (lambda: AccessPattern(age_max=UINT_MAX + 1), "age_max"),
        (lambda: Watermarks("cpu"), "valid: none, free_mem_rate"),
        (lambda: Watermarks("free_mem_rate", 0, 100, 200, 0), "high >= mid >= low"),
        (lambda: Filter("hugepage"), "valid: anon, active, memcg"),
        (lambda: Filter("memcg"), "needs memcg_path"),
        (lambda: Filter("addr", addr_start=5, addr_end=5), "addr_start < addr_end"),
        (lambda: Scheme("explode"), "valid: willneed, cold, pageout"),
        (lambda: Context("kvm"), "valid: vaddr, fvaddr, paddr"),
        (lambda: Context("vaddr", targets=(Target(None),)), "needs a pid"),
        (lambda: Context("paddr", targets=(Target(3),)), "must not have a pid"),
        (lambda: Context("paddr", targets=(Target(None),)), "needs regions"),
        (lambda: Kdamond(()), "exactly one context"),
        (lambda: Quotas(ms=-1), "out of range"),
        (lambda: MonitoringAttrs(sample_us=True), "must be an integer"),
    ],
)
def test_validation(build, fragment):
    with pytest.raises(ConfigError) as info:
        build()
    assert fragment in str(info.value)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['sampling'\]"):
        MonitoringAttrs.from_dict({"sampling": 1})
    with pytest.raises(ConfigError, match=r"needs an action"):
        Scheme.from_dict({})


def test_scheme_sysfs_files_put_parents_first():
    scheme = full_kdamond().context.schemes[0]
    files = list(scheme_sysfs_files(scheme))
    assert files.index("filters/nr_filters") < files.index("filters/0/type")
    mapping = scheme_sysfs_files(scheme)
    assert mapping["filters/0/memcg_path"] == "/x"
    assert mapping["filters/1/damon_target_idx"] == 1 and mapping["filters/1/allow"] == "Y"
    assert "filters/0/addr_start" not in mapping


def test_units():
    assert units.parse_size("4K") == units.parse_size("4 KiB") == units.parse_size("4KB") == 4096
    assert units.parse_size("1.5M") == 1572864 and units.parse_size("1,024") == 1024
    assert units.parse_duration_us("1 m 30 s") == 90_000_000
    assert units.parse_duration_us("0 ns") == 0
    assert units.parse_percent("12.5 %") == Fraction(25, 2)
    assert units.format_size(4096) == "4 KiB" and units.format_size(4097) == "4097 B"
    assert units.format_size(2 << 20, compact=True) == "2M"
    assert (
        units.format_duration(7_000_000) == "7 s"
        and units.format_duration(1500, compact=True) == "1500us"
    )
    assert units.format_decimal(Fraction("0.05")) == "0.05"
    with pytest.raises(units.UnitError, match=r"not a whole number of bytes"):
        units.parse_size("0.3")
    with pytest.raises(units.UnitError, match=r"not a whole number of microseconds"):
        units.parse_duration_us("1 ns")


IOMEM = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
00100000-bfffffff : System RAM
  01000000-01ffffff : Kernel code
c0000000-febfffff : PCI Bus 0000:00
100000000-63fffffff : System RAM
"""


def test_iomem_largest_system_ram(tmp_path):
    regions = parse_system_ram(IOMEM)
    assert [(r.start, r.end) for r in regions] == [
        (0x1000, 0x9FC00),
        (0x100000, 0xC0000000),
        (0x100000000, 0x640000000),
    ]
    kernel = FakeKernel(tmp_path)
    kernel.host("/proc/iomem").write_text(IOMEM)
    assert largest_system_ram(kernel.fs) == Region(0x100000000, 0x640000000)
    assert system_ram_target(kernel.fs).pid is None


def test_iomem_zeros_for_non_root_are_refused():
    zeros = "00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n"
    with pytest.raises(DamonPermissionError, match=r"needs root"):
        parse_system_ram(zeros)


def test_iomem_without_system_ram(tmp_path):
    kernel = FakeKernel(tmp_path)
    kernel.host("/proc/iomem").write_text("00000000-00000fff : Reserved\n")
    with pytest.raises(DamonError, match=r"no 'System RAM' range"):
        largest_system_ram(kernel.fs)
