"""Validation of JUnit reports against the Jenkins xUnit plugin's JUnit schema (tests/data/junit-10.xsd)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

XSD = Path(__file__).parent / "data" / "junit-10.xsd"


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def assert_valid_junit(path: Path) -> etree._Element:
    """The parsed report at `path`, after checking it against the schema (every error in the message)."""
    document = etree.parse(str(path))
    schema = _schema()
    assert schema.validate(document), "\n".join(str(e) for e in schema.error_log)
    return document.getroot()
