"""Condition bookkeeping in the Kubernetes API conventions, and the one way the operator
looks a condition up (`find`, `is_true`): of a ReconJob, or of any other object it reads
(a runner Job, its pod, a Kueue Workload), whose conditions `of` reads into the same model.

`lastTransitionTime` is what `kubectl wait` users and dashboards read as "since when", so it
moves only when a condition's status flips; a changed reason or message alone keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError
from recon_api.constants import ConditionType
from recon_api.models import CONDITION_MESSAGE_MAX, Condition

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


def find(conditions: Sequence[Condition] | None, type_: ConditionType | str) -> Condition | None:
    wanted = type_.value if isinstance(type_, ConditionType) else type_
    for cond in conditions or ():
        if cond.type == wanted:
            return cond
    return None


def is_true(conditions: Sequence[Condition] | None, type_: ConditionType | str) -> bool:
    cond = find(conditions, type_)
    return cond is not None and cond.status == "True"


def of(obj: Mapping[str, Any] | None) -> list[Condition]:
    """The conditions of an object the operator does not own the schema of. A message
    longer than a ReconJob's condition holds is cut to fit; a condition that does not parse
    (a status outside True/False/Unknown) is left out rather than read as one."""
    result = []
    for raw in ((obj or {}).get("status") or {}).get("conditions") or ():
        if not isinstance(raw, Mapping):
            continue
        fields = dict(raw)
        if isinstance(fields.get("message"), str):
            fields["message"] = fields["message"][:CONDITION_MESSAGE_MAX]
        try:
            result.append(Condition.model_validate(fields))
        except ValidationError:
            continue
    return result


def to_api(conditions: Sequence[Condition]) -> list[dict[str, Any]]:
    return [c.to_api() for c in conditions]
