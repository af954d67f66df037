"""Every test process and every command it starts keeps its defaults away from the user's home.

The server's default database (`PHONEFLOW_DATA_DIR`) and the CLI's profiles
(`PHONEFLOW_CONFIG_DIR`) live in a folder of this test session, removed at its end; a test that
checks a default sets its own folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_SESSION_HOME = tempfile.mkdtemp(prefix="phoneflow-tests-")


def pytest_configure(config: pytest.Config) -> None:
    os.environ["PHONEFLOW_DATA_DIR"] = os.path.join(_SESSION_HOME, "data")
    os.environ["PHONEFLOW_CONFIG_DIR"] = os.path.join(_SESSION_HOME, "config")
    for name in ("PHONEFLOW_SERVER", "PHONEFLOW_TOKEN", "PHONEFLOW_PROFILE"):
        os.environ.pop(name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)
