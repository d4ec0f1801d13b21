"""Campaign loading, validation and run order."""

from __future__ import annotations

import pytest

from damon_eval.config.campaign import campaign_from_dict, load_campaign
from damon_eval.config.runkey import RunKey
from damon_eval.errors import ConfigError

MINIMAL = {
    "campaign": "t",
    "workloads": ["synthetic/zigzag", "debian/x264"],
    "configs": ["orig", "rec"],
}


def test_shipped_campaigns_validate():
    assert load_campaign("default.yaml").repeats == 3
    paper = load_campaign("paper.yaml")
    assert len(paper.workloads) == 25
    assert len(paper.runs()) == 750
    assert paper.settings["guest"]["memory_mib"] == 20480
    assert load_campaign("ci.yaml").settings["results_dir"] == "results/ci"


def test_defaults_are_filled():
    campaign = campaign_from_dict(MINIMAL, "<test>")
    assert campaign.repeats == 5
    assert campaign.settings["guest"] == {
        "spec": "guest/default.yaml",
        "vcpus": 2,
        "memory_mib": 2048,
        "accel": "auto",
        "fast_start": True,
        "pin_vcpus": None,
    }
    assert campaign.settings["noise"] == {
        "drop_caches": "auto",
        "compact_memory": "auto",
        "pin_cpus": "auto",
    }


def test_interleaved_order_runs_repeat_one_of_every_cell_first():
    runs = campaign_from_dict({**MINIMAL, "repeats": 2}, "<test>").runs()
    assert [r.repeat for r in runs] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert runs[:2] == [
        RunKey("synthetic", "zigzag", "orig", 1),
        RunKey("synthetic", "zigzag", "rec", 1),
    ]


def test_shuffled_order_is_reproducible_from_its_seed():
    settings = {**MINIMAL, "repeats": 3, "order": "shuffled", "shuffle_seed": 7}
    first = campaign_from_dict(settings, "<test>").runs()
    again = campaign_from_dict(settings, "<test>").runs()
    other = campaign_from_dict({**settings, "shuffle_seed": 8}, "<test>").runs()
    assert first == again
    assert first != other
    assert sorted(first) == sorted(campaign_from_dict({**MINIMAL, "repeats": 3}, "<test>").runs())


def test_priority_follows_order():
    campaign = campaign_from_dict({**MINIMAL, "repeats": 2}, "<test>")
    runs = campaign.runs()
    priorities = [campaign.priority(r) for r in runs]
    assert priorities == sorted(priorities, reverse=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"configs": ["orig", "prclx"]}, "unknown configuration 'prclx'; valid: ethp, orig, prcl"),
        ({"repeats": 0}, "repeats: 0 is less than the minimum of 1"),
        ({"order": "random"}, "order: 'random' is not valid; valid values: interleaved, shuffled"),
        ({"workloads": ["zigzag"]}, "workloads[0]"),
        (
            {"guest": {"accel": "hvf"}},
            "guest.accel: 'hvf' is not valid; valid values: auto, kvm, tcg",
        ),
        ({"colour": "red"}, "valid keys:"),
    ],
)
def test_bad_campaigns_name_the_bad_value(change, message):
    with pytest.raises(ConfigError) as err:
        campaign_from_dict({**MINIMAL, **change}, "camp.yaml")
    assert str(err.value).startswith("camp.yaml: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_repeats_auto_plans_min_repeats_first():
    campaign = campaign_from_dict(
        {**MINIMAL, "repeats": "auto", "auto_repeats": {"min_repeats": 2, "max_repeats": 4}},
        "<test>",
    )
    rule = campaign.auto_repeats
    assert (rule.min_repeats, rule.max_repeats, rule.target_rel_half_width) == (2, 4, 0.02)
    assert rule.metric == "runtime"
    assert campaign.repeats == 2
    assert len(campaign.runs()) == 2 * 2 * 2
    assert campaign_from_dict(MINIMAL, "<test>").auto_repeats is None


def test_repeats_auto_later_rounds_keep_the_cell_order():
    campaign = campaign_from_dict(
        {**MINIMAL, "repeats": "auto", "auto_repeats": {"min_repeats": 2, "max_repeats": 4}},
        "<test>",
    )
    first_cells = [(k.workload, k.config) for k in campaign.runs() if k.repeat == 1]
    later = [RunKey("synthetic", "zigzag", "rec", 3), RunKey("debian", "x264", "orig", 3)]
    by_priority = sorted(later, key=campaign.priority, reverse=True)
    assert [(k.workload, k.config) for k in by_priority] == [
        c for c in first_cells if c in {("zigzag", "rec"), ("x264", "orig")}
    ]
    with pytest.raises(ConfigError, match="not part of campaign"):
        campaign.priority(RunKey("synthetic", "zigzag", "rec", 5))  # beyond max_repeats


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"repeats": "sometimes"}, "repeats: 'sometimes' is not valid; valid: a number of"),
        ({"auto_repeats": {"target_ci": 2}}, "auto_repeats.target_ci: 2 is greater than"),
        ({"auto_repeats": {"min_repeats": 1}}, "auto_repeats.min_repeats: 1 is less than"),
        ({"auto_repeats": {"min": 3}}, "('min' was unexpected); valid keys: max_repeats"),
        (
            {"auto_repeats": {"min_repeats": 6, "max_repeats": 4}},
            "auto_repeats: need 2 <= min_repeats (6) <= max_repeats (4)",
        ),
        ({"auto_repeats": {"metric": "speed"}}, "auto_repeats.metric: unknown metric 'speed'"),
    ],
)
def test_bad_repeats_auto_names_the_bad_value(change, message):
    with pytest.raises(ConfigError) as err:
        campaign_from_dict({**MINIMAL, "repeats": "auto", **change}, "camp.yaml")
    assert str(err.value).startswith("camp.yaml: ")
    assert message in str(err.value)


def test_campaign_plan_of_repeats_auto_lists_round_one_then_the_rule(tmp_path, capsys):
    import yaml

    from damon_eval import cli

    path = tmp_path / "auto.yaml"
    settings = {**MINIMAL, "repeats": "auto", "auto_repeats": {"min_repeats": 2}}
    path.write_text(yaml.safe_dump(settings))
    assert cli.main(["campaign", "plan", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * 2 * 2 + 1
    assert lines[0].split() == ["1", "synthetic/zigzag/orig/01"]
    assert lines[-1] == (
        "then rounds of one more repeat per cell whose runtime 95% CI half-width is above "
        "2.0% of its mean, up to 10 repeats (repeats: auto)"
    )
