"""The built files a page loads come from Vite's manifest: an entry's script, and the styles of the
entry and of every chunk it imports (the builder and the run page's overlay share one)."""

from __future__ import annotations

import json
from pathlib import Path

from server.dashboard.builder_assets import ENTRY, OVERLAY_ENTRY, builder_assets


def test_each_entry_gets_its_own_styles_and_those_of_the_chunks_it_imports(tmp_path: Path) -> None:
    (tmp_path / ".vite").mkdir()
    manifest = {
        "_shared.js": {"file": "assets/shared.js", "css": ["assets/shared.css"], "imports": ["_react.js"]},
        "_react.js": {"file": "assets/react.js", "imports": ["_shared.js"]},  # a cycle is read once
        ENTRY: {
            "file": "assets/main.js",
            "isEntry": True,
            "imports": ["_shared.js"],
            "css": ["assets/main.css"],
        },
        OVERLAY_ENTRY: {"file": "assets/overlay.js", "imports": ["_shared.js"]},
    }
    (tmp_path / ".vite" / "manifest.json").write_text(json.dumps(manifest))
    main = builder_assets(tmp_path)
    assert main.script == "/static/builder/assets/main.js"
    assert main.styles == ("/static/builder/assets/shared.css", "/static/builder/assets/main.css")
    overlay = builder_assets(tmp_path, entry=OVERLAY_ENTRY)
    assert overlay.script == "/static/builder/assets/overlay.js"
    assert overlay.styles == ("/static/builder/assets/shared.css",)
