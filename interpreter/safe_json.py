"""JSON every part can store, send and print: bounded depth, no NUL, no lone surrogate, no NaN.

Python's `json` takes documents the rest of the system cannot carry: `"\\ud800"` (a lone
surrogate) is no valid UTF-8, so it cannot be printed, stored as UTF-8 text or sent on; a NUL
character cannot be stored in a PostgreSQL text or JSONB value; `NaN` and `Infinity` are not
JSON at all, nor are numbers beyond a double (1e400 reads as infinity); whole numbers beyond 64
bits fit no integer column and no client; and a document nested thousands deep makes every
recursive reader fail. The server
refuses such request bodies (server/input_guard.py) and the command lines refuse such files,
both with the checks here, so what is once accepted can always be read back.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Deep enough for any workflow, inputs or report (they nest a handful of levels), shallow
# enough for every recursive reader (pydantic, jinja, jsonschema, the CLIs' printers).
MAX_DEPTH = 64

# Text that may hold one of the refused things; only a body that matches is parsed and walked.
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _number_classes() -> bytes:
    """A translation of a body's bytes by what matters to a number: a digit reads 0, an exponent's e,
    its sign +, what may end a number (`,]}` and white space) a comma, anything else x. The result is
    searched as plain text: a regular expression tried at every digit of a 10 kB report cost ~0.3 ms."""
    table = bytearray(b"x" * 256)
    for kind, members in ((b"0", b"0123456789"), (b"e", b"eE"), (b"+", b"+-"), (b",", b",]} \t\n\r")):
        for member in members:
            table[member] = kind[0]
    return bytes(table)


_NUMBER_CLASSES = _number_classes()
_EXPONENTS = (b"0e000", b"0e+000")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class UnsafeJson(ValueError):
    """The document cannot be accepted; `pointer` (RFC 6901) says where, `hint` what to do."""

    def __init__(self, pointer: str, message: str, hint: str) -> None:
        super().__init__(f"{pointer or '/'}: {message}")
        self.pointer = pointer
        self.message = message
        self.hint = hint


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as it is (a NUL, a lone surrogate), or None."""
    if "\x00" in text:
        return "holds a NUL character (\\u0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"holds a lone surrogate (\\u{ord(text[exc.start]):04x}), which is no Unicode character"
    return None


def _pointer(parts: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check_value(value: Any, max_depth: int = MAX_DEPTH, prefix: list[str | int] | None = None) -> None:
    """Raise `UnsafeJson` at the first place of `value` (parsed JSON) that cannot be accepted."""
    stack: list[tuple[Any, list[str | int]]] = [(value, list(prefix or []))]
    base = len(prefix or [])
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                raise UnsafeJson(_pointer(path), f"the text {problem}", _TEXT_HINT)
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise UnsafeJson(
                    _pointer(path),
                    "NaN, Infinity and numbers beyond ±1.8e308 are not JSON numbers",
                    _NUMBER_HINT,
                )
        elif isinstance(item, _LongNumber) or (
            isinstance(item, int) and not isinstance(item, bool) and not INT_MIN <= item <= INT_MAX
        ):
            raise UnsafeJson(
                _pointer(path),
                "the whole number is beyond 64 bits (±9223372036854775807)",
                "send a smaller number, or the digits as a string",
            )
        elif isinstance(item, dict | list):
            if len(path) - base >= max_depth:
                raise UnsafeJson(
                    _pointer(path),
                    f"the document nests deeper than {max_depth} levels",
                    f"flatten it to at most {max_depth} levels of objects and arrays",
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    problem = text_problem(key)
                    if problem is not None:
                        raise UnsafeJson(_pointer([*path, key]), f"the key {problem}", _TEXT_HINT)
                    stack.append((child, [*path, key]))
            else:
                stack.extend((child, [*path, index]) for index, child in enumerate(item))


_NUMBER_HINT = "send a finite number or null"
INT_MAX = 2**63 - 1
INT_MIN = -(2**63)


class _LongNumber:
    """A whole number written with more digits than any 64-bit one (kept as text, never converted:
    Python refuses to convert more than 4300 digits, and that refusal would be an error of ours)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _parse_int(text: str) -> int | _LongNumber:
    return _LongNumber(text) if len(text) > 20 else int(text)


_TEXT_HINT = "send text without NUL characters and with surrogates only in valid pairs (UTF-8)"


def _surely_shallow(raw: bytes, max_depth: int) -> bool:
    """True when the brackets of `raw` nest at most `max_depth` deep (False: maybe deeper).

    Strips everything but brackets and removes innermost pairs, in C. One round removes one or two
    levels, so emptied within max_depth // 2 rounds means at most max_depth deep. Brackets inside
    strings can only make the answer False (then the document is parsed and walked), never True.
    """
    brackets = raw.translate(None, _NOT_BRACKETS)
    for _ in range(max_depth // 2):
        if not brackets:
            return True
        reduced = brackets.replace(b"{}", b"").replace(b"[]", b"")
        if len(reduced) == len(brackets):
            return False
        brackets = reduced
    return not brackets


def _maybe_long_number(raw: bytes) -> bool:
    """True when `raw` may hold a number beyond 64 bits or a double: a run of 19 digits, or an exponent
    of three digits or more. JSON puts a digit before an exponent and a delimiter or the end after it;
    an id's hex ("…3e123…", in half the UUIDs of a report) has neither, and is passed."""
    classes = raw.translate(_NUMBER_CLASSES)
    if b"0" * 19 in classes:
        return True
    for exponent in _EXPONENTS:
        start = classes.find(exponent)
        while start != -1:
            end = start + len(exponent)
            while end < len(classes) and classes[end] == 0x30:  # the exponent's further digits
                end += 1
            if end == len(classes) or classes[end] == 0x2C:  # the end, or a delimiter: a number
                return True
            start = classes.find(exponent, end)
    return False


def needs_check(raw: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """False when `raw` surely holds nothing `check_value` refuses: the fast path for most bodies.

    A search for one byte is a `memchr`, ~30 times quicker than one for a longer text: a body without a
    backslash has no escape and one without an `N` no NaN (a 10 kB report has neither, and these
    searches were ~40 % of the scan)."""
    if b"\\" in raw and b"\\u" in raw and _SUSPECT.search(raw) is not None:
        return True
    if b"\x00" in raw or (b"N" in raw and b"NaN" in raw) or b"Infinity" in raw:
        return True
    if _maybe_long_number(raw):
        return True
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return True
    return not _surely_shallow(raw, max_depth)


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON like `json.loads`, then `check_value` it; `ValueError` (or `UnsafeJson`) when refused.

    NaN and Infinity are refused; a document too deep for the parser is `UnsafeJson` too.
    """
    try:
        # NaN, Infinity and long numbers parse, so that the check below can point at them.
        value = json.loads(text, parse_int=_parse_int)
    except RecursionError:
        raise UnsafeJson(
            "",
            f"the document nests deeper than {max_depth} levels",
            f"flatten it to at most {max_depth} levels of objects and arrays",
        ) from None
    check_value(value, max_depth)
    return value


def checked(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """`value` (parsed JSON) itself, after `check_value` found nothing to refuse."""
    check_value(value, max_depth)
    return value
