"""Reading JSON files strictly: what Python's parser lets through but JSON does not mean.

`json.loads` takes `NaN` and `Infinity`, turns `1e309` into infinity, and keeps the last of
two equal keys in an object without a word. A workflow (or inputs, a scenario, an app model)
read that way would run with something its author did not write, so every file the CLIs read
goes through `loads_strict`, which refuses each of these naming its JSON pointer.
"""

from __future__ import annotations

import json
import math
from typing import Any

from interpreter.problems import pointer


class StrictJsonError(ValueError):
    """The text is JSON that Python reads, but with something JSON does not mean; names the pointer."""


class _Keys(dict[str, Any]):
    """An object that had the same key twice (the keys are kept)."""

    duplicates: list[str]


class _NotANumber:
    """A number JSON does not have (`NaN`, `Infinity`, or one too large for a double)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    duplicates = []
    for key, value in pairs:
        if key in result:
            duplicates.append(key)
        result[key] = value
    if not duplicates:
        return result
    marked = _Keys(result)
    marked.duplicates = duplicates
    return marked


def _float(text: str) -> Any:
    value = float(text)
    return _NotANumber(text) if math.isinf(value) else value


def loads_strict(text: str) -> Any:
    """`json.loads(text)`, refusing NaN/Infinity, numbers beyond a double's range and duplicate keys.

    Raises `json.JSONDecodeError` for text that is not JSON at all, `StrictJsonError` (with the
    JSON pointer of the first such place) for the rest.
    """
    data = json.loads(text, object_pairs_hook=_object, parse_float=_float, parse_constant=_NotANumber)
    problem = _first_problem(data)
    if problem is not None:
        raise StrictJsonError(problem)
    return data


def _first_problem(data: Any) -> str | None:
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _NotANumber):
            return (
                f"at {pointer(path) or '/'}: {value.text} is not a number JSON can carry "
                "(NaN and Infinity are not JSON; a double reaches about 1.8e308): write a finite number"
            )
        if isinstance(value, dict):
            if isinstance(value, _Keys):
                key = value.duplicates[0]
                return (
                    f"at {pointer([*path, key])}: the key '{key}' appears twice in one object, and only the "
                    "last would count: keep one"
                )
            stack.extend((item, [*path, key]) for key, item in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((item, [*path, index]) for index, item in reversed(list(enumerate(value))))
    return None
