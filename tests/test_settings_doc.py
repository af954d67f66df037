"""docs/settings.md lists every setting the server reads, each with its default as the code has it."""

from __future__ import annotations

import re
from pathlib import Path

from server.settings import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
# Read outside `Settings` (server/settings.py, server/metrics.py): listed in the doc's last table.
OTHERS = {"PHONEFLOW_DATA_DIR", "DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR"}


def shown_default(name: str) -> str:
    """A setting's default as the doc writes it."""
    field = Settings.model_fields[name]
    if field.default_factory is not None:
        return "`phoneflow.db` in the data folder"
    value = field.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if value == "":
        return '`""`'
    return f"`{value}`"


def rows() -> dict[str, str]:
    """The doc's table rows: variable → its default cell."""
    found = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `([A-Z0-9_]+)` \| ([^|]+) \|", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def test_every_setting_is_documented_with_its_default() -> None:
    documented = rows()
    for name in Settings.model_fields:
        variable = f"PHONEFLOW_{name.upper()}"
        assert variable in documented, f"{variable} is not in docs/settings.md"
        assert documented[variable] == shown_default(name), variable


def test_the_doc_lists_no_setting_that_does_not_exist() -> None:
    known = {f"PHONEFLOW_{name.upper()}" for name in Settings.model_fields} | OTHERS
    assert set(rows()) - known == set()
    assert OTHERS <= set(rows())
