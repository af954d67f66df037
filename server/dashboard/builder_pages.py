"""The builder's pages: a new workflow, a draft of an existing one, a version read-only, and
the comparison of two versions.

Each page is server-rendered around one element that the builder island mounts on; the
island then talks to `/api/v1` with the page's session cookie and CSRF token, the same API
any script uses. The built files are served from `static/builder/`.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from server.dashboard.builder_assets import MEDIA_TYPES, BuilderNotBuilt, builder_assets, built_file
from server.dashboard.pages_route import dashboard_router
from server.dashboard.render import page
from server.dashboard.session import DashboardUser, User
from server.db import SessionDep
from server.workflows import service

router = dashboard_router()

# Vite names every built file after a hash of its content: a name never changes meaning.
_IMMUTABLE = "public, max-age=31536000, immutable"


def _builder_page(
    request: Request, user: DashboardUser, title: str, mount: dict[str, str], back: str
) -> Response:
    try:
        assets = builder_assets()
    except BuilderNotBuilt as exc:
        return page(
            request,
            "message.html",
            user,
            503,
            title="The builder is not available",
            detail=str(exc),
            back=back,
        )
    return page(request, "builder.html", user, title=title, assets=assets, mount=mount, back=back)


@router.get("/workflows/new", response_class=HTMLResponse)
def new_workflow(request: Request, user: User) -> Response:
    """The builder on an empty draft: saving it creates the workflow."""
    return _builder_page(request, user, "New workflow", {"mode": "new"}, "/workflows")


@router.get("/workflows/{workflow_id}/edit", response_class=HTMLResponse)
def edit_workflow(
    request: Request, workflow_id: str, db: SessionDep, user: User, from_version: str | None = None
) -> Response:
    """The builder on a draft of the latest version (or of `?from_version=ID`); saving adds a version."""
    workflow = service.get_workflow(db, user.account, workflow_id)
    version = (
        service.get_version(db, workflow, from_version)
        if from_version
        else service.latest_version(db, workflow)
    )
    mount = {"mode": "edit", "workflow-id": workflow.id, "version-id": version.id}
    return _builder_page(request, user, f"Edit {workflow.name}", mount, f"/workflows/{workflow.id}")


@router.get("/workflows/{workflow_id}/versions/{version_id}", response_class=HTMLResponse)
def view_version(request: Request, workflow_id: str, version_id: str, db: SessionDep, user: User) -> Response:
    """One saved version in the builder, read-only, with a way to start a draft from it."""
    workflow = service.get_workflow(db, user.account, workflow_id)
    version = service.get_version(db, workflow, version_id)
    mount = {"mode": "view", "workflow-id": workflow.id, "version-id": version.id}
    return _builder_page(
        request, user, f"{workflow.name} v{version.number}", mount, f"/workflows/{workflow.id}"
    )


@router.get("/workflows/{workflow_id}/diff", response_class=HTMLResponse)
def compare_versions(
    request: Request,
    workflow_id: str,
    db: SessionDep,
    user: User,
    from_version: str = "",
    to_version: str = "",
) -> Response:
    """What changed from one version to another: nodes added, removed, and changed field by field."""
    workflow = service.get_workflow(db, user.account, workflow_id)
    before = service.get_version(db, workflow, from_version)
    after = service.get_version(db, workflow, to_version)
    return page(
        request,
        "version_diff.html",
        user,
        workflow=workflow,
        before=before,
        after=after,
        diff=service.diff_versions(before, after),
    )


@router.get("/static/builder/{name:path}")
def builder_file(name: str) -> FileResponse:
    """A built file of the builder (scripts, styles, images)."""
    path = built_file(name)
    if path is None:
        raise HTTPException(404, detail=f"no builder file {name!r}")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers={"Cache-Control": _IMMUTABLE})
