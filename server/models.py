"""Every server model, imported in one place so that the metadata is complete.

Alembic's env and the tests import this module; each domain keeps its own `models.py`.
"""

from __future__ import annotations

import contextlib
import importlib

from server.accounts.models import Account, ApiToken
from server.appmodels.models import SavedAppModel
from server.db import Base
from server.denylist.models import DenylistEntry
from server.devices.models import Device, DeviceCommand, PairingCode, PairingFailure
from server.schedules.models import Schedule
from server.workflows.models import Workflow, WorkflowVersion

# The runs domain is built alongside; load its models when present.
with contextlib.suppress(ModuleNotFoundError):
    importlib.import_module("server.runs.models")
    importlib.import_module("server.approvals.models")
    importlib.import_module("server.webhooks.models")
    importlib.import_module("server.hooks.models")
    importlib.import_module("server.notifications.models")

__all__ = [
    "Account",
    "ApiToken",
    "Base",
    "DenylistEntry",
    "Device",
    "DeviceCommand",
    "PairingCode",
    "PairingFailure",
    "SavedAppModel",
    "Schedule",
    "Workflow",
    "WorkflowVersion",
]
