"""SPMD programs run by the TCP tests, one process per party (``module:function``)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import numpy as np

from securecomp.mpc import Session
from securecomp.mpc import nonlinear as nl


def arith(sess: Session, mine: np.ndarray) -> dict[str, Any]:
    """Party 0 holds x, party 1 holds y (3 x 4); every op is revealed to everyone."""
    x = sess.share(mine if sess.party_id == 0 else None, owner=0, bound=16, shape=(3, 4))
    y = sess.share(mine if sess.party_id == 1 else None, owner=1, bound=16, shape=(3, 4))
    return {
        "add": sess.reveal(x + y),
        "mul": sess.reveal(x * y),
        "matmul": sess.reveal(x @ y.T),
        "sum": sess.reveal((x - y).sum(axis=0)),
        "lt": sess.reveal(x < y),
        "relu": sess.reveal(nl.relu(x)),
        "to_party_1": sess.reveal(x * 2, to=1),
    }


def _victim(sess: Session) -> int:
    return int(os.environ.get("SECURECOMP_TEST_VICTIM", str(sess.n_parties - 1)))


def _pair(sess: Session) -> tuple[Any, Any]:
    a = sess.share(np.arange(6.0) if sess.party_id == 0 else None, bound=8)
    b = sess.share(np.ones(6) if sess.party_id == 0 else None, bound=8)
    return a, b


def killed(sess: Session) -> list[float]:
    """The victim dies (SIGKILL, no clean-up) between two multiplications."""
    a, b = _pair(sess)
    c = a * b
    if sess.party_id == _victim(sess):
        os.kill(os.getpid(), signal.SIGKILL)
    return sess.reveal(c * b).tolist()


def silent(sess: Session) -> list[float]:
    """The victim stops talking (but stays alive) between two multiplications."""
    a, b = _pair(sess)
    c = a * b
    if sess.party_id == _victim(sess):
        time.sleep(600)
    return sess.reveal(c * b).tolist()


def mismatched(sess: Session) -> None:
    """Party 1 opens a share of another shape than its peers expect."""
    n = 5 if sess.party_id == 1 else 4
    sess.open_sum(np.zeros(n, dtype=np.uint64), tag="test.open")
