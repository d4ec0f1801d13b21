"""Run configurations: the six of the evaluation document and user-written ones."""

from __future__ import annotations

import pytest

from damon_eval.config.configuration import load_configuration
from damon_eval.errors import ConfigError
from damon_eval.metrics import SEED_CONFIGS


@pytest.mark.parametrize("name", SEED_CONFIGS)
def test_seed_configurations_validate(name):
    configuration = load_configuration(name)
    assert configuration.name == name


def test_seed_configurations_follow_the_evaluation_document():
    orig, rec, prec, thp, ethp, prcl = (load_configuration(n) for n in SEED_CONFIGS)
    assert (orig.thp, orig.damon, orig.swap) == ("madvise", None, None)
    assert rec.damon["operations"] == "vaddr" and rec.records
    assert prec.damon["operations"] == "paddr" and prec.damon["target"] == "system_ram"
    assert prec.records
    assert thp.thp == "always" and thp.damon is None
    assert [s.spec.action for s in ethp.schemes] == ["hugepage", "nohugepage"]
    (prcl_scheme,) = prcl.schemes
    raw = prcl_scheme.to_sysfs_dict()
    assert raw["action"] == "pageout"
    assert raw["access_pattern/sz/min"] == 4096
    assert raw["access_pattern/nr_accesses/max"] == 1
    assert raw["access_pattern/age/min"] == 70
    assert prcl.swap == {"type": "zram", "size": "4G", "comp_algorithm": None}
    for configuration in (rec, prec, ethp, prcl):
        assert configuration.damon["attrs"] == {
            "sample_us": 5000,
            "aggr_us": 100000,
            "update_us": 1000000,
            "min_nr_regions": 10,
            "max_nr_regions": 1000,
        }


def _write(tmp_path, name, text):
    directory = tmp_path / "configurations"
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nthp: sometimes\n",
            "thp: 'sometimes' is not valid; valid values: always, madvise, never",
        ),
        ("name: y\n", "name: 'y' must equal the file name 'x'"),
        ("name: x\ndamon: {operations: paddr, target: workload}\n", "paddr monitors 'system_ram'"),
        (
            "name: x\ndamon: {operations: vaddr, attrs: {sample_us: 10, aggr_us: 5}}\n",
            "sample_us <= aggr_us",
        ),
        ("name: x\nswap: {type: zram, size: lots}\n", "swap"),
        (
            "name: x\ndamon: {operations: vaddr, schemes: schemes/nosuch.damos}\n",
            "no such scheme file",
        ),
        ("name: x\n  bad: [\n", "invalid YAML"),
        ("name: x\ndamon: {operations: vaddr, schemes: '4K max 0 5 7s max swapout'}\n", "swapout"),
    ],
)
def test_bad_configurations_name_the_problem(tmp_path, monkeypatch, text, message):
    monkeypatch.setenv("DAMON_EVAL_CONFIGS", str(tmp_path))
    path = _write(tmp_path, "x", text)
    with pytest.raises(ConfigError) as err:
        configuration = load_configuration(path)
        configuration.schemes_text()
    assert message in str(err.value)
    assert "\n" not in str(err.value)
