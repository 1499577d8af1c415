"""Purposes of processing a user can consent to, one by one (GDPR Art. 6(1)(a), Art. 7).

Consent under the GDPR is given "for one or more specific purposes" (Art. 6(1)(a)), and
Art. 5(1)(b) (purpose limitation) forbids using data for another purpose than the one
collected for. A user can therefore opt in to federated training but not to evaluation, and
the registry checks the purpose of every selection.
"""

from __future__ import annotations

from enum import StrEnum

from securecomp.errors import ParameterError

__all__ = ["Purpose"]


class Purpose(StrEnum):
    """A purpose of processing; its value is the name stored in the registry."""

    #: Contributing model updates to federated training of the shared model.
    TRAINING = "training"
    #: Adapting the shared model to the user's own data on the user's device.
    PERSONALIZATION = "personalization"
    #: Contributing to the measurement of model quality (evaluation rounds).
    EVALUATION = "evaluation"

    @classmethod
    def parse(cls, value: Purpose | str) -> Purpose:
        """``value`` as a `Purpose`; a `ParameterError` names the valid ones otherwise."""
        if isinstance(value, Purpose):
            return value
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(p.value for p in cls)
            raise ParameterError(f"unknown purpose {value!r}; use one of: {valid}") from None
