"""The builder's built files: where Vite writes them, which ones a page loads, and serving them.

The builder (`builder/`, TypeScript) is built by `make builder` into `static/builder/` beside
this module; that folder is git-ignored and never imported from. Vite's manifest names the
entry's hashed script and style files, which may then be cached for good.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

BUILDER_DIST = Path(__file__).parent / "static" / "builder"
MANIFEST = Path(".vite") / "manifest.json"
ENTRY = "src/main.tsx"
# The second entry: the screen overlay a run page puts on a failed step's screenshot and hierarchy.
OVERLAY_ENTRY = "src/overlay.tsx"
URL_PREFIX = "/static/builder/"
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
NOT_BUILT = (
    "the builder is not built on this server: run `make builder` in the phoneflow checkout "
    "(it needs Node.js 20.19 or newer and npm), then reload this page"
)


class BuilderNotBuilt(Exception):
    """The built files are missing or unreadable; the message says what to do."""


@dataclass(frozen=True, slots=True)
class BuilderAssets:
    """The URLs a page needs to mount the builder."""

    script: str
    styles: tuple[str, ...]


@lru_cache(maxsize=4)
def _read_manifest(path: Path, mtime_ns: int, name: str) -> BuilderAssets:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        entry = manifest[name]
        return BuilderAssets(
            script=URL_PREFIX + entry["file"],
            styles=tuple(URL_PREFIX + css for css in _styles(manifest, name, set())),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuilderNotBuilt(f"{NOT_BUILT} ({path} is unreadable: {exc})") from None


def _styles(manifest: dict[str, Any], name: str, seen: set[str]) -> list[str]:
    """The CSS files of a manifest chunk and of every chunk it imports (shared chunks carry theirs)."""
    if name in seen:
        return []
    seen.add(name)
    chunk = manifest[name]
    found: list[str] = []
    for imported in chunk.get("imports", []):
        found += [css for css in _styles(manifest, imported, seen) if css not in found]
    found += [css for css in chunk.get("css", []) if css not in found]
    return found


def builder_assets(dist: Path | None = None, entry: str = ENTRY) -> BuilderAssets:
    """The entry's script and styles, from the manifest (re-read when a new build replaces it)."""
    path = (dist or BUILDER_DIST) / MANIFEST
    try:
        mtime_ns = path.stat().st_mtime_ns
    except OSError:
        raise BuilderNotBuilt(NOT_BUILT) from None
    return _read_manifest(path, mtime_ns, entry)


def built_file(name: str, dist: Path | None = None) -> Path | None:
    """The built file `name` (a path under the build folder), or None when there is none such."""
    root = (dist or BUILDER_DIST).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path.suffix not in MEDIA_TYPES or not path.is_file():
        return None
    if path.relative_to(root).parts[0] == MANIFEST.parts[0]:
        return None  # the manifest is for the server, not for browsers
    return path
