"""Options of ``backend="ckks"`` (``TrainingSpec.options`` / ``backend_options``), checked.

=====================  ==================================================================
option                 meaning
=====================  ==================================================================
``params``             `CKKSParameters` for training (default: planned from the data)
``session``            a `CKKSSession` to reuse (key made and public context sent once)
``refresh``            ``"auto"`` (key holder refreshes every step) or ``"never"``
``inference_params``   `CKKSParameters` of inference clients (default: planned)
``inference_model``    ``"encrypted"`` (default) or ``"released"`` (after ``release``)
``residual_bound``     bound on ``|Z v - y|`` of least squares, in units of the
                       standardized target (default 8), to size the chain
``sigmoid_weighting``  ``"uniform"`` (default) or ``"chebyshev"`` least squares
``security_bits``      128 (default), 192 or 256
``noise_seed``         seed of the simulated noise (``simulate=True`` only)
``release_bound``      ``"heuristic"`` (default, tail 2^-40 per value) or ``"worst-case"``
=====================  ==================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from securecomp.errors import ParameterError
from securecomp.params import SECURITY_LEVELS, CKKSParameters

__all__ = ["CKKSOptions"]

_KEYS = (
    "params",
    "session",
    "refresh",
    "inference_params",
    "inference_model",
    "residual_bound",
    "sigmoid_weighting",
    "security_bits",
    "noise_seed",
    "release_bound",
)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> Any:
    if value not in choices:
        raise ParameterError(f"ckks option {name!r} must be one of {choices}, got {value!r}")
    return value


@dataclass(frozen=True)
class CKKSOptions:
    """The validated options (see the module docstring)."""

    params: CKKSParameters | None = None
    session: Any = None
    refresh: Literal["auto", "never"] = "auto"
    inference_params: CKKSParameters | None = None
    inference_model: Literal["encrypted", "released"] = "encrypted"
    residual_bound: float = 8.0
    sigmoid_weighting: Literal["uniform", "chebyshev"] = "uniform"
    security_bits: int = 128
    noise_seed: int | None = None
    release_bound: Literal["heuristic", "worst-case"] = "heuristic"

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> CKKSOptions:
        """Check every option; unknown names and bad values raise `ParameterError`."""
        unknown = sorted(set(options) - set(_KEYS))
        if unknown:
            raise ParameterError(f"unknown ckks option(s) {unknown}; known: {', '.join(_KEYS)}")
        # Imported here: the session module pulls in the roles (and TenSEAL).
        from securecomp.models.ckks.session import CKKSSession

        o = dict(options)
        for name in ("params", "inference_params"):
            if o.get(name) is not None and not isinstance(o[name], CKKSParameters):
                raise ParameterError(f"ckks option {name!r} must be a CKKSParameters")
        if o.get("session") is not None and not isinstance(o["session"], CKKSSession):
            raise ParameterError("ckks option 'session' must be a CKKSSession (establish one)")
        session, given = o.get("session"), o.get("params")
        if session is not None and given is not None and session.params != given:
            raise ParameterError("ckks options 'session' and 'params' disagree; pass one")
        rb = o.get("residual_bound", 8.0)
        if (
            isinstance(rb, bool)
            or not isinstance(rb, int | float)
            or not (math.isfinite(rb) and rb > 0)
        ):
            raise ParameterError(f"ckks option 'residual_bound' must be > 0, got {rb!r}")
        bits = o.get("security_bits", 128)
        if bits not in SECURITY_LEVELS or isinstance(bits, bool):
            raise ParameterError(f"ckks option 'security_bits' must be one of {SECURITY_LEVELS}")
        seed = o.get("noise_seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ParameterError("ckks option 'noise_seed' must be an int or None")
        return cls(
            params=o.get("params"),
            session=o.get("session"),
            refresh=_choice("refresh", o.get("refresh", "auto"), ("auto", "never")),
            inference_params=o.get("inference_params"),
            inference_model=_choice(
                "inference_model", o.get("inference_model", "encrypted"), ("encrypted", "released")
            ),
            residual_bound=float(rb),
            sigmoid_weighting=_choice(
                "sigmoid_weighting", o.get("sigmoid_weighting", "uniform"), ("uniform", "chebyshev")
            ),
            security_bits=int(bits),
            noise_seed=seed,
            release_bound=_choice(
                "release_bound", o.get("release_bound", "heuristic"), ("heuristic", "worst-case")
            ),
        )
