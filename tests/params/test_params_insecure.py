"""The insecure opt-in: loud, scoped, nestable, restored on exit, per thread."""

from __future__ import annotations

import threading
import warnings

import pytest

from securecomp.errors import InsecureParameterError, ParameterError
from securecomp.params import (
    InsecureParametersWarning,
    insecure_allowed,
    insecure_test_parameters,
    require_secure,
)


def test_warning_is_a_user_warning() -> None:
    assert issubclass(InsecureParametersWarning, UserWarning)


def test_context_manager_warns_and_scopes() -> None:
    assert not insecure_allowed()
    with pytest.warns(InsecureParametersWarning, match="tests only"), insecure_test_parameters():
        assert insecure_allowed()
        require_secure(False, "anything")  # allowed here
    assert not insecure_allowed()
    with pytest.raises(InsecureParameterError, match="small thing; use secure parameters"):
        require_secure(False, "small thing")
    require_secure(True, "fine")


def test_nested_scopes_restore_outer_state() -> None:
    with pytest.warns(InsecureParametersWarning) as record:
        with insecure_test_parameters():
            with insecure_test_parameters():
                assert insecure_allowed()
            assert insecure_allowed()  # the inner exit does not close the outer scope
        assert not insecure_allowed()
    assert len(record) == 2  # every entry is loud


def test_same_object_reentered() -> None:
    scope = insecure_test_parameters()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with scope:
            with scope:
                assert insecure_allowed()
            assert insecure_allowed()
    assert not insecure_allowed()


def test_restored_after_an_exception() -> None:
    with (
        pytest.warns(InsecureParametersWarning),
        pytest.raises(ValueError),
        insecure_test_parameters(),
    ):
        raise ValueError("boom")
    assert not insecure_allowed()


def test_decorator_scopes_each_call() -> None:
    @insecure_test_parameters()
    def inside() -> bool:
        return insecure_allowed()

    assert inside.__name__ == "inside"
    with pytest.warns(InsecureParametersWarning):
        assert inside()
    assert not insecure_allowed()
    with pytest.warns(InsecureParametersWarning):
        assert inside()  # reusable


def test_scope_does_not_leak_to_other_threads() -> None:
    seen: list[bool] = []
    with pytest.warns(InsecureParametersWarning), insecure_test_parameters():
        t = threading.Thread(target=lambda: seen.append(insecure_allowed()))
        t.start()
        t.join()
    assert seen == [False]


def test_refusal_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError):
        require_secure(False, "x")
    with pytest.raises(ValueError):
        require_secure(False, "x")
