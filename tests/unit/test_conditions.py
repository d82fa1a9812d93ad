"""Conditions follow the API conventions `kubectl wait` and dashboards rely on."""

from __future__ import annotations

from datetime import timedelta

from recon_api.constants import ConditionType
from recon_api.models import CONDITION_MESSAGE_MAX
from recon_operator import conditions
from recon_operator.conditions import find, set_condition

from tests.support.reconjobs import T0


def test_new_condition_is_appended_with_the_generation() -> None:
    conds = set_condition(
        None, ConditionType.INPUTS_VALID, True, "Valid", "ok", generation=2, now=T0
    )
    assert len(conds) == 1
    c = conds[0]
    assert (c.type, c.status, c.reason, c.message) == ("InputsValid", "True", "Valid", "ok")
    assert c.last_transition_time == T0 and c.observed_generation == 2


def test_transition_time_moves_only_when_the_status_flips() -> None:
    later, latest = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    conds = set_condition(
        None, ConditionType.SCHEDULED, False, "Unschedulable", "a", generation=1, now=T0
    )
    conds = set_condition(
        conds, ConditionType.SCHEDULED, False, "Unschedulable", "b", generation=1, now=later
    )
    scheduled = find(conds, ConditionType.SCHEDULED)
    assert scheduled is not None
    assert scheduled.message == "b" and scheduled.last_transition_time == T0
    conds = set_condition(
        conds, ConditionType.SCHEDULED, True, "Scheduled", "c", generation=1, now=latest
    )
    scheduled = find(conds, ConditionType.SCHEDULED)
    assert scheduled is not None and scheduled.last_transition_time == latest


def test_other_conditions_keep_their_place() -> None:
    conds = set_condition(None, ConditionType.INPUTS_VALID, True, "Valid", "", generation=1, now=T0)
    conds = set_condition(conds, ConditionType.ADMITTED, False, "Queued", "", generation=1, now=T0)
    conds = set_condition(
        conds, ConditionType.INPUTS_VALID, True, "Valid", "x", generation=1, now=T0
    )
    assert [c.type for c in conds] == ["InputsValid", "Admitted"]


def test_conditions_of_other_objects_are_read_into_the_same_model() -> None:
    """A runner Job's, a pod's or a Workload's conditions, looked up the one way: a message
    too long for a ReconJob's condition is cut to fit, one that does not parse is left out."""
    pod = {
        "status": {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "x" * 40000,
                    "lastProbeTime": None,
                },
                {"type": "Ready", "status": "maybe"},
                "not a condition",
            ]
        }
    }
    found = conditions.of(pod)
    assert [c.type for c in found] == ["PodScheduled"]
    scheduled = conditions.find(found, "PodScheduled")
    assert scheduled is not None and scheduled.reason == "Unschedulable"
    assert scheduled.message is not None and len(scheduled.message) == CONDITION_MESSAGE_MAX
    assert not conditions.is_true(found, "PodScheduled")
    assert conditions.of(None) == [] and conditions.of({"status": None}) == []
