"""Property-based checks of the whole API against its own OpenAPI document (schemathesis).

Every operation gets generated requests, valid and invalid, with a real account token;
no answer may be a 5xx, and every answer must match the documented status codes,
content types and schemas.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from server.app import create_app
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device, create_workflow

# Server-sent events never end; they have their own tests.
STREAMING = {("GET", "/api/v1/events")}
POSITIVE_CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)
CHECKS = (*POSITIVE_CHECKS, negative_data_rejection)
# Per operation and mode. The contract is the API's, whatever the database: SQLite gets the full
# count, PostgreSQL (the same code on another dialect) a smaller sample.
EXAMPLES_PER_OPERATION = {"sqlite": 25, "postgresql": 8}


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The app with the default body limit: generated bodies are large, and schemathesis does not
    count a 413 as rejecting invalid data (the limit has its own tests in test_errors.py)."""
    return create_app(settings.model_copy(update={"max_body_bytes": Settings().max_body_bytes}))


def _negative_headers(case: schemathesis.Case) -> bool:
    meta = case.meta
    if meta is None:
        return False
    return any(
        str(location.value).lower() == "header" and info.mode is GenerationMode.NEGATIVE
        for location, info in meta.components.items()
    )


def test_api_conforms_to_its_openapi(app: FastAPI, db: Db) -> None:
    acc = create_account(db, plan="pro")
    create_workflow(db, acc.id)
    create_device(db, acc.id)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        if (operation.method.upper(), operation.path) in STREAMING:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES_PER_OPERATION[db.kind],
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case) -> None:
                # The token is set here; a case made "invalid" by a missing Authorization
                # header becomes valid with it, so such a case need not be rejected.
                checks = POSITIVE_CHECKS if _negative_headers(case) else CHECKS
                case.call_and_validate(headers=auth(acc.token), checks=checks)

            try:
                check()
            except KeyboardInterrupt:
                raise
            except Unsatisfiable:
                # Nothing to make invalid (no parameters, no body) in negative mode.
                if mode is not GenerationMode.NEGATIVE:
                    raise
            except (
                BaseException
            ) as exc:  # schemathesis raises exception groups; collect all, report at the end
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    if failures:
        pytest.fail("\n\n".join(failures))
