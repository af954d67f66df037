"""JSON-RPC errors and positional-parameter checks for the uiautomator2 server.

Every check names the method, the parameter's position and name, what came and what is
expected, so that a client author sees at once which call was wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.u2_selectors import U2Selector

__all__ = ["BAD_PARAMS", "NOT_FOUND", "Params", "RpcError"]

NOT_FOUND = -32001
BAD_PARAMS = -32602


class RpcError(Exception):
    """A JSON-RPC error answer: `code`, the Java-style `message` the client matches on, and `data`."""

    def __init__(self, code: int, message: str, data: str) -> None:
        super().__init__(f"{code} {message}: {data}")
        self.code = code
        self.message = message
        self.data = data


class Params:
    """The positional parameters of one call (`{}` and null mean none)."""

    def __init__(self, method: str, raw: Any) -> None:
        self.method = method
        if raw is None or (isinstance(raw, Mapping) and not raw):
            self._values: list[Any] = []
        elif isinstance(raw, list):
            self._values = raw
        else:
            raise RpcError(
                BAD_PARAMS, "Invalid params", f"{method}: params must be a JSON array, got {raw!r}"
            )

    def __len__(self) -> int:
        return len(self._values)

    def bad(self, problem: str) -> RpcError:
        return RpcError(BAD_PARAMS, "Invalid params", f"{self.method}: {problem}")

    def _get(self, index: int, name: str, default: Any) -> Any:
        if index < len(self._values) and self._values[index] is not None:
            return self._values[index]
        if default is _REQUIRED:
            raise self.bad(f"parameter {index} ({name}) is missing")
        return default

    def _wrong(self, index: int, name: str, expected: str, value: Any) -> RpcError:
        return self.bad(f"parameter {index} ({name}) must be {expected}, got {value!r}")

    def number(self, index: int, name: str, default: Any = None) -> float:
        value = self._get(index, name, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(index, name, "a number", value)
        return float(value)

    def integer(self, index: int, name: str, default: Any = None) -> int:
        value = self._get(index, name, _REQUIRED if default is None else default)
        # Java clients may send 20000.0 for a long; accept integral floats.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(index, name, "an integer", value)
        return value

    def boolean(self, index: int, name: str, default: Any = None) -> bool:
        value = self._get(index, name, _REQUIRED if default is None else default)
        if not isinstance(value, bool):
            raise self._wrong(index, name, "true or false", value)
        return value

    def string(self, index: int, name: str) -> str:
        value = self._get(index, name, _REQUIRED)
        if not isinstance(value, str):
            raise self._wrong(index, name, "a string", value)
        return value

    def optional_string(self, index: int, name: str) -> str | None:
        value = self._get(index, name, None)
        if value is not None and not isinstance(value, str):
            raise self._wrong(index, name, "a string or null", value)
        return value

    def number_list(self, index: int, name: str) -> list[float]:
        value = self._get(index, name, _REQUIRED)
        if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise self._wrong(index, name, "a list of numbers", value)
        return [float(v) for v in value]

    def point(self, index: int, name: str) -> tuple[float, float]:
        """A `{"x": X, "y": Y}` parameter (an android.graphics.Point)."""
        value = self._get(index, name, _REQUIRED)
        if not isinstance(value, Mapping) or not all(
            isinstance(value.get(k), int | float) and not isinstance(value.get(k), bool) for k in ("x", "y")
        ):
            raise self._wrong(index, name, 'a point {"x": X, "y": Y}', value)
        return float(value["x"]), float(value["y"])

    def is_selector(self, index: int) -> bool:
        return index < len(self._values) and isinstance(self._values[index], Mapping)

    def selector(self, index: int) -> U2Selector:
        """The selector at `index`; `SelectorError` (→ -32602) when it cannot be understood."""
        return U2Selector.parse(self._get(index, "selector", _REQUIRED))


_REQUIRED = object()
