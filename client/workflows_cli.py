"""`phoneflow workflows list|show|push|publish|diff`: workflow definitions on the server."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from client.api import Api
from client.common import AsJson, Profile, connect, find_workflow
from client.exit_codes import CliError, Exit
from client.output import err, out, print_json, print_table, when

workflows_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Workflows on the server: list, push, publish, diff."
)

Workflow = Annotated[str, typer.Argument(help="The workflow's id or exact name.", show_default=False)]
Version = Annotated[
    int | None, typer.Option("--version", help="A version number (default: see the command).", min=1)
]


@workflows_app.command("list")
def list_command(profile: Profile = None, as_json: AsJson = False) -> None:
    """The account's workflows, with their latest version and whether one is published."""
    with connect(profile) as api:
        workflows = api.get("/workflows")
    if as_json:
        print_json(workflows)
        return
    rows = [
        [w["id"], w["name"], f"v{w['latestVersionNumber']}", "yes" if w["publishedVersionId"] else "no",
         when(w["updatedAt"])]
        for w in workflows
    ]  # fmt: skip
    print_table(
        None, ("id", "name", "latest", "published", "updated"), rows,
        "no workflows yet: `phoneflow workflows push FILE --publish` adds one",
    )  # fmt: skip


@workflows_app.command("show")
def show_command(workflow: Workflow, profile: Profile = None, as_json: AsJson = False) -> None:
    """A workflow's versions, and which one is published."""
    with connect(profile) as api:
        found = find_workflow(api, workflow)
        versions = api.get(f"/workflows/{found['id']}/versions")
    if as_json:
        print_json({**found, "versions": versions})
        return
    out.print(f"{found['name']} ({found['id']})")
    published = found["publishedVersionId"]
    rows = [
        [f"v{v['number']}", v["id"], when(v["createdAt"]), "published" if v["id"] == published else "",
         str(len(v.get("warnings") or []))]
        for v in versions
    ]  # fmt: skip
    print_table(None, ("version", "id", "saved", "", "warnings"), rows, "no versions")


@workflows_app.command("push")
def push_command(
    file: Annotated[Path, typer.Argument(help="The workflow definition (JSON).", show_default=False)],
    name: Annotated[
        str | None, typer.Option("--name", help="The workflow's name (default: the file's)")
    ] = None,
    publish: Annotated[bool, typer.Option("--publish", help="Publish the pushed version too.")] = False,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """Validate FILE here, then save it as a new version of the workflow of that name (or create it)."""
    definition = _load_valid(file)
    title = name or definition.get("name")
    if not isinstance(title, str) or not title.strip():
        raise _usage(f"{file} has no name: give --name NAME")
    with connect(profile) as api:
        existing = [w for w in api.get("/workflows") if w["name"] == title]
        if len(existing) > 1:
            raise CliError(f"{len(existing)} workflows are named {title!r}: rename one first", Exit.REFUSED)
        created = not existing
        changed = True
        if created:
            saved = api.post("/workflows", {"name": title, "definition": definition})
            workflow_id, version_id, number = saved["id"], saved["versionId"], saved["number"]
        else:
            workflow_id = existing[0]["id"]
            latest = api.get(f"/workflows/{workflow_id}")["latestVersion"]
            if latest["definition"] == definition:
                changed = False
                version_id, number = latest["id"], latest["number"]
            else:
                saved = api.post(f"/workflows/{workflow_id}/versions", {"definition": definition})
                version_id, number = saved["id"], saved["number"]
        if publish:
            api.post(f"/workflows/{workflow_id}/publish", {"versionId": version_id})
    result = {"workflowId": workflow_id, "versionId": version_id, "number": number, "created": created,
              "changed": changed, "published": publish}  # fmt: skip
    if as_json:
        print_json(result)
        return
    verb = "created" if created else ("saved" if changed else "unchanged:")
    published = (" and published it" if changed or created else ", published") if publish else ""
    out.print(f"{verb} {title!r} v{number} ({workflow_id}){published}")
    if not publish:
        err.print(f"next: phoneflow workflows publish {workflow_id} --version {number}")


@workflows_app.command("publish")
def publish_command(
    workflow: Workflow, version: Version = None, profile: Profile = None, as_json: AsJson = False
) -> None:
    """Make a version the one that runs (default: the latest)."""
    with connect(profile) as api:
        found = find_workflow(api, workflow)
        chosen = _version(api, found, version) if version else found["latestVersion"]
        published = api.post(f"/workflows/{found['id']}/publish", {"versionId": chosen["id"]})
    if as_json:
        print_json(published)
        return
    out.print(f"published {found['name']!r} v{chosen['number']} ({found['id']})")


@workflows_app.command("diff")
def diff_command(
    workflow: Workflow,
    file: Annotated[
        Path | None, typer.Argument(help="A local definition (default: compare with the latest version).")
    ] = None,
    version: Version = None,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """What changes from the published version (or --version N) to FILE, or to the latest version.

    Exit 0 when both are the same, 9 when they differ."""
    local = _load_json(file) if file is not None else None
    with connect(profile) as api:
        found = find_workflow(api, workflow)
        if version:
            base = _version(api, found, version)
        elif found["publishedVersionId"]:
            base = api.get(f"/workflows/{found['id']}/versions/{found['publishedVersionId']}")
        else:
            base = found["latestVersion"]
    if local is not None:
        other, other_name = local, str(file)
    else:
        other, other_name = (
            found["latestVersion"]["definition"],
            f"v{found['latestVersion']['number']} (latest)",
        )
    base_name = f"v{base['number']}" + (" (published)" if base["id"] == found["publishedVersionId"] else "")
    lines = list(
        difflib.unified_diff(_lines(base["definition"]), _lines(other), fromfile=base_name, tofile=other_name)
    )
    if as_json:
        print_json({"from": base_name, "to": other_name, "same": not lines, "diff": "".join(lines)})
    elif not lines:
        out.print(f"{base_name} and {other_name} are the same")
    else:
        for line in lines:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            out.print(line.rstrip("\n"), style=style, markup=False)
    raise typer.Exit(int(Exit.DIFFERENT) if lines else 0)


def _lines(definition: Any) -> list[str]:
    return [line + "\n" for line in json.dumps(definition, indent=2, ensure_ascii=False).splitlines()]


def _version(api: Api, workflow: dict[str, Any], number: int) -> dict[str, Any]:
    for version in api.get(f"/workflows/{workflow['id']}/versions"):
        if version["number"] == number:
            found: dict[str, Any] = version
            return found
    raise CliError(
        f"{workflow['name']!r} has no v{number} (latest v{workflow['latestVersion']['number']})",
        Exit.NOT_FOUND,
    )


def _usage(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True)
    return typer.Exit(int(Exit.USAGE))


def _load_json(file: Path) -> Any:
    from interpreter.cli import UnreadableInput, load_definition

    try:
        return load_definition(file)
    except UnreadableInput as exc:
        raise _usage(str(exc)) from None


def _load_valid(file: Path) -> dict[str, Any]:
    """The definition in FILE once it validates here (every problem printed, warnings allowed)."""
    from interpreter.problems import errors_only
    from interpreter.validation import validate

    definition = _load_json(file)
    problems = validate(definition)
    for problem in problems:
        colour = "bold red" if problem.severity == "error" else "yellow"
        err.print(f"[{colour}]{problem.severity}[/] {problem.pointer or '/'}: {problem.message}", markup=True)
        if problem.hint:
            err.print(f"  hint: {problem.hint}", style="dim")
    if errors_only(problems):
        raise _usage(f"{file} is not valid: nothing was pushed; fix the errors above")
    assert isinstance(definition, dict)
    return definition
