"""Options of the MPC model protocol (``TrainingSpec.options`` for ``backend="mpc"``).

Every option is public: all computing parties must agree on it before the run, so none
of them may depend on another party's data. The bounds are the contract that lets the
bound tracker (`securecomp.mpc.bounds`) guarantee the truncation precondition
``|z| < 2^62`` of every product: ``feature_bound`` and ``target_bound`` are *checked*
(each party refuses its own input beyond them when it secret-shares it), while
``weight_bound`` is a *claim* about the iterates that no party can check without
revealing them (`securecomp.mpc.backend.assume_bound`); it is checked on the revealed
model at the end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal

from securecomp.errors import ParameterError
from securecomp.mpc.session import DEFAULT_FRAC_BITS, Truncation
from securecomp.net import DEFAULT_TIMEOUT

__all__ = ["DEFAULT_PREFETCH_WORDS", "MPCOptions", "parse_options"]

SigmoidKind = Literal["piecewise", "poly"]
ModelMode = Literal["reveal", "shared"]

#: Largest amount of preprocessing (64-bit words per party) fetched from the dealer at once:
#: 2^24 words = 128 MiB per party. Training fetches the material of as many steps as fit.
DEFAULT_PREFETCH_WORDS = 1 << 24

_KEYS = (
    "parties",
    "truncation",
    "partition",
    "sigmoid",
    "feature_bound",
    "target_bound",
    "weight_bound",
    "model",
    "query_party",
    "frac_bits",
    "timeout",
    "prefetch_words",
)


@dataclass(frozen=True)
class MPCOptions:
    """Validated options of `securecomp.mpc.models.MPCProtocol`.

    Attributes
    ----------
    parties : int
        Computing parties (>= 2), each holding a horizontal slice of the training rows.
    truncation : {"dealer", "local"}
        Dealer-assisted one-round truncation (any number of parties) or SecureML's local
        truncation (2 parties; no communication, fails with probability about |z| / 2^63
        per element).
    partition : tuple of int or None
        Rows held by each party, in order (contiguous blocks of ``X``); None splits the
        rows into near-equal contiguous blocks.
    sigmoid : {"piecewise", "poly"}
        The activation of logistic regression: SecureML's piecewise-linear function
        (Mohassel and Zhang, S&P 2017, section 4.3; the default) or the least-squares
        polynomial of ``TrainingSpec.sigmoid_degree`` on ``[-sigmoid_interval,
        sigmoid_interval]`` (`securecomp.models.approx.fit_sigmoid`, as CKKS uses).
    feature_bound : float
        Public bound on ``|x|`` of every feature (checked when shared).
    target_bound : float
        Public bound on ``|y|`` for linear regression (checked when shared); logistic
        labels are 0/1 and use 1.
    weight_bound : float
        Claimed bound on every coefficient of every iterate (w and Nesterov's v).
    model : {"reveal", "shared"}
        Reveal the trained model to every party (default), or keep it secret-shared for
        MPC inference (`MPCProtocol.release` reveals it later).
    query_party : int
        The party that holds the rows to score and receives the scores.
    frac_bits : int
        Fractional bits of the fixed-point encoding (ring Z_2^64).
    timeout : float
        Receive timeout of every channel, seconds.
    prefetch_words : int
        Preprocessing fetched at once, in 64-bit words per party.
    """

    parties: int = 2
    truncation: Truncation = Truncation.DEALER
    partition: tuple[int, ...] | None = None
    sigmoid: SigmoidKind = "piecewise"
    feature_bound: float = 16.0
    target_bound: float = 1024.0
    weight_bound: float = 256.0
    model: ModelMode = "reveal"
    query_party: int = 0
    frac_bits: int = DEFAULT_FRAC_BITS
    timeout: float = DEFAULT_TIMEOUT
    prefetch_words: int = DEFAULT_PREFETCH_WORDS

    def rows_per_party(self, n: int) -> tuple[int, ...]:
        """The number of rows of each party for ``n`` rows in total."""
        if self.partition is None:
            base, extra = divmod(n, self.parties)
            return tuple(base + (1 if i < extra else 0) for i in range(self.parties))
        if sum(self.partition) != n:
            raise ParameterError(
                f"partition {list(self.partition)} covers {sum(self.partition)} rows but X has "
                f"{n}; give one row count per party, summing to the number of rows"
            )
        return self.partition


def _int(name: str, value: object, low: int) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or int(value) < low:
        raise ParameterError(f"option {name!r} must be an int >= {low}, got {value!r}")
    return int(value)


def _positive(name: str, value: object) -> float:
    if not isinstance(value, Real) or isinstance(value, bool):
        raise ParameterError(f"option {name!r} must be a number > 0, got {value!r}")
    out = float(value)
    if not (math.isfinite(out) and out > 0):
        raise ParameterError(f"option {name!r} must be finite and > 0, got {value!r}")
    return out


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(
            f"option {name!r} must be one of {', '.join(map(repr, choices))}; got {value!r}"
        )
    return value


def _partition(value: object, parties: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ParameterError(
            f"option 'partition' must be None or a sequence of row counts, got {value!r}"
        )
    counts = tuple(_int("partition", v, 0) for v in value)
    if len(counts) != parties:
        raise ParameterError(
            f"option 'partition' has {len(counts)} entries for {parties} parties; "
            "give one row count per party"
        )
    return counts


def parse_options(options: Mapping[str, Any]) -> MPCOptions:
    """Check ``TrainingSpec.options`` and return the `MPCOptions` they describe.

    Raises
    ------
    ParameterError
        An unknown key (the message lists the known ones) or a bad value.
    """
    unknown = sorted(set(options) - set(_KEYS))
    if unknown:
        raise ParameterError(
            f"unknown option(s) {unknown} for backend 'mpc'; known: {', '.join(_KEYS)}"
        )
    d = MPCOptions()
    parties = _int("parties", options.get("parties", d.parties), 2)
    try:
        truncation = Truncation(options.get("truncation", d.truncation))
    except ValueError:
        raise ParameterError(
            f"option 'truncation' must be 'dealer' or 'local', got {options['truncation']!r}"
        ) from None
    if truncation is Truncation.LOCAL and parties != 2:
        raise ParameterError(
            f"SecureML local truncation works for 2 parties only, not {parties}; "
            "use truncation='dealer'"
        )
    frac_bits = _int("frac_bits", options.get("frac_bits", d.frac_bits), 1)
    if frac_bits > 30:
        raise ParameterError(f"option 'frac_bits' must lie in 1..30, got {frac_bits}")
    query = _int("query_party", options.get("query_party", d.query_party), 0)
    if query >= parties:
        raise ParameterError(f"option 'query_party' {query} is not one of the {parties} parties")
    return MPCOptions(
        parties=parties,
        truncation=truncation,
        partition=_partition(options.get("partition"), parties),
        sigmoid=_choice("sigmoid", options.get("sigmoid", d.sigmoid), ("piecewise", "poly")),  # type: ignore[arg-type]
        feature_bound=_positive("feature_bound", options.get("feature_bound", d.feature_bound)),
        target_bound=_positive("target_bound", options.get("target_bound", d.target_bound)),
        weight_bound=_positive("weight_bound", options.get("weight_bound", d.weight_bound)),
        model=_choice("model", options.get("model", d.model), ("reveal", "shared")),  # type: ignore[arg-type]
        query_party=query,
        frac_bits=frac_bits,
        timeout=_positive("timeout", options.get("timeout", d.timeout)),
        prefetch_words=_int("prefetch_words", options.get("prefetch_words", d.prefetch_words), 1),
    )
