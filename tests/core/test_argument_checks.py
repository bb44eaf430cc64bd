"""The quick argument check agrees with ``inspect.Signature.bind`` on every call shape it handles."""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import pytest

from taskplane.core.errors import TaskArgumentsError
from taskplane.core.registry import TaskRegistry, _fits, _shape


def no_parameters() -> None: ...
def one(a: int) -> None: ...
def with_default(a: int, b: int = 1) -> None: ...
def two_defaults(a: int, b: int, c: int = 2, d: int = 3) -> None: ...
def star(a: int, *rest: int) -> None: ...
def keyword_only(a: int, *, b: int) -> None: ...


@pytest.mark.parametrize("function", [no_parameters, one, with_default, two_defaults])
def test_the_quick_check_agrees_with_bind(function: Any) -> None:
    signature, shape = inspect.signature(function), _shape(function)
    assert shape is not None
    for given in range(6):
        for count in range(4):
            for names in itertools.combinations(["a", "b", "c", "d", "x"], count):
                args, kwargs = list(range(given)), {name: 1 for name in names}
                try:
                    signature.bind(*args, **kwargs)
                    fits = True
                except TypeError:
                    fits = False
                assert _fits(shape, args, kwargs) is fits, (function.__name__, args, kwargs)


def test_other_signatures_are_bound() -> None:
    assert _shape(star) is None and _shape(keyword_only) is None
    registry = TaskRegistry()
    registry.add("t.star", "normal", star, None)
    registry.add("t.keyword_only", "normal", keyword_only, None)
    registry.check_arguments("t.star", [1, 2, 3], {})
    with pytest.raises(TaskArgumentsError, match=r"missing a required (keyword-only )?argument: 'b'"):
        registry.check_arguments("t.keyword_only", [1], {})
