"""The stages of a secure-aggregation round (Bonawitz et al., CCS 2017, Fig. 4).

The semi-honest protocol has four stages (`Stage`); against a malicious server (the
paper's active model) a ConsistencyCheck round sits between masked-input collection and
unmasking (`ActiveStage.CONSISTENCY_CHECK`). `ActiveStage` is kept apart from `Stage` so
that iterating `Stage` still lists exactly the semi-honest protocol; `protocol_stages`
gives the stages of either mode in order.
"""

from __future__ import annotations

import enum

from securecomp.errors import ParameterError

__all__ = [
    "MALICIOUS_STAGES",
    "SEMI_HONEST_STAGES",
    "ActiveStage",
    "AnyStage",
    "Stage",
    "as_stage",
    "protocol_stages",
    "reply_stage",
]


class Stage(enum.StrEnum):
    """The four stages of the protocol, in order (all of the semi-honest protocol)."""

    ADVERTISE_KEYS = "advertise_keys"
    SHARE_KEYS = "share_keys"
    MASKED_INPUT_COLLECTION = "masked_input_collection"
    UNMASKING = "unmasking"


class ActiveStage(enum.StrEnum):
    """The stage only the malicious-server mode has (Bonawitz et al., Fig. 4, round 3).

    Kept apart from `Stage` so that ``list(Stage)`` still lists the semi-honest protocol.
    """

    CONSISTENCY_CHECK = "consistency_check"


AnyStage = Stage | ActiveStage

#: Stages of the semi-honest protocol, in order.
SEMI_HONEST_STAGES: tuple[AnyStage, ...] = tuple(Stage)
#: Stages against a malicious server: ConsistencyCheck between collection and unmasking.
MALICIOUS_STAGES: tuple[AnyStage, ...] = (
    Stage.ADVERTISE_KEYS,
    Stage.SHARE_KEYS,
    Stage.MASKED_INPUT_COLLECTION,
    ActiveStage.CONSISTENCY_CHECK,
    Stage.UNMASKING,
)


def protocol_stages(malicious: bool) -> tuple[AnyStage, ...]:
    """The stages of a round, in order, for the semi-honest or the malicious-server mode."""
    return MALICIOUS_STAGES if malicious else SEMI_HONEST_STAGES


def as_stage(value: object) -> AnyStage:
    """A `Stage` or `ActiveStage` from itself or its name (``"share_keys"``, ...).

    Raises
    ------
    ParameterError
        Not the name of a stage.
    """
    if isinstance(value, Stage | ActiveStage):
        return value
    if isinstance(value, str):
        for enum_type in (Stage, ActiveStage):
            try:
                return enum_type(value)
            except ValueError:
                continue
    raise ParameterError(
        f"unknown stage {value!r}; stages: {[s.value for s in MALICIOUS_STAGES]}"
    )


def reply_stage(stage: AnyStage, stages: tuple[AnyStage, ...]) -> AnyStage:
    """The stage a client works in when answering a server message of ``stage``."""
    return stages[min(stages.index(stage) + 1, len(stages) - 1)]
