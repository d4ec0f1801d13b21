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
