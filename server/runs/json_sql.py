"""JSON aggregates in SQL that PostgreSQL and SQLite spell differently: how the hot statements read a
run's stored trace events or an account's denylist entries in the row of the statement that needs them,
instead of in a round trip of their own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class json_array_agg(FunctionElement[Any]):  # noqa: N801 - a SQL function's name
    """`json_agg(x)` on PostgreSQL, `json_group_array(x)` on SQLite: the values of a group as a JSON array
    (NULL on PostgreSQL when the group is empty)."""

    type = JSON()
    inherit_cache = True


@compiles(json_array_agg, "postgresql")
def _json_agg_pg(element: json_array_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_agg({compiler.process(element.clauses, **kw)})"


@compiles(json_array_agg, "sqlite")
def _json_agg_sqlite(element: json_array_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


class json_pair(FunctionElement[Any]):  # noqa: N801 - a SQL function's name
    """`[seq, event]` as a JSON array: an integer and a JSON column (SQLite keeps JSON as text)."""

    type = JSON()
    inherit_cache = True


@compiles(json_pair, "postgresql")
def _json_pair_pg(element: json_pair, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_build_array({compiler.process(element.clauses, **kw)})"


@compiles(json_pair, "sqlite")
def _json_pair_sqlite(element: json_pair, compiler: SQLCompiler, **kw: Any) -> str:
    first, second = list(element.clauses)
    return f"json_array({compiler.process(first, **kw)}, json({compiler.process(second, **kw)}))"


class json_text_pair(FunctionElement[Any]):  # noqa: N801 - a SQL function's name
    """`[a, b]` as a JSON array of two text columns."""

    type = JSON()
    inherit_cache = True


@compiles(json_text_pair, "postgresql")
def _json_text_pair_pg(element: json_text_pair, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_build_array({compiler.process(element.clauses, **kw)})"


@compiles(json_text_pair, "sqlite")
def _json_text_pair_sqlite(element: json_text_pair, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_array({compiler.process(element.clauses, **kw)})"
