"""Condition bookkeeping in the Kubernetes API conventions, and the one way the operator
looks a ReconJob's condition up (`find`, `is_true`).

`lastTransitionTime` is what `kubectl wait` users and dashboards read as "since when", so it
moves only when a condition's status flips; a changed reason or message alone keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from recon_api.constants import ConditionType
from recon_api.models import Condition

ConditionStatus = Literal["True", "False", "Unknown"]


def as_status(value: bool | ConditionStatus) -> ConditionStatus:
    if isinstance(value, bool):
        return "True" if value else "False"
    return value


def set_condition(
    conditions: Sequence[Condition] | None,
    type_: ConditionType,
    status: bool | ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """The conditions with one type set; others keep their place and values."""
    wanted = as_status(status)
    result: list[Condition] = []
    found = False
    for cond in conditions or ():
        if cond.type != type_.value:
            result.append(cond)
            continue
        found = True
        changed = cond.status != wanted
        result.append(
            Condition(
                type=type_.value,
                status=wanted,
                reason=reason,
                message=message,
                last_transition_time=now if changed else (cond.last_transition_time or now),
                observed_generation=generation,
            )
        )
    if not found:
        result.append(
            Condition(
                type=type_.value,
                status=wanted,
                reason=reason,
                message=message,
                last_transition_time=now,
                observed_generation=generation,
            )
        )
    return result


def find(conditions: Sequence[Condition] | None, type_: ConditionType) -> Condition | None:
    for cond in conditions or ():
        if cond.type == type_.value:
            return cond
    return None


def is_true(conditions: Sequence[Condition] | None, type_: ConditionType) -> bool:
    cond = find(conditions, type_)
    return cond is not None and cond.status == "True"


def to_api(conditions: Sequence[Condition]) -> list[dict[str, Any]]:
    return [c.to_api() for c in conditions]
