"""A small real HTTP server speaking the `runs.report` contract (docs/http-api.md), for the outbox tests.

It exists so the outbox and uploader can be tested over real sockets without the whole
phoneflow server; the end-to-end tests (agent, kill) use the real server process.
Knobs: `fail_next` answers the next N requests with 503; `reject_ids` rejects those runs;
`poison_ids` makes every request holding one of those runs fail with 500 (a server bug).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANK = {"queued": 0, "running": 1, "waiting_for_approval": 1}
_TERMINAL = {"success", "failed", "cancelled", "timeout"}


def _rank(status: str) -> int:
    return _RANK.get(status, 2)


class ReportStore:
    def __init__(self, token: str) -> None:
        self.token = token
        self.runs: dict[str, dict[str, Any]] = {}
        self.requests: list[list[str]] = []  # run ids per accepted request, in arrival order
        self.fail_next = 0
        self.reject_ids: set[str] = set()
        self.poison_ids: set[str] = set()
        self.server_faults = 0
        self.max_body: int | None = None
        self.lock = threading.Lock()

    def apply(self, run: dict[str, Any]) -> dict[str, Any]:
        run_id = str(run["id"])
        if run_id in self.reject_ids:
            return {"id": run_id, "result": "rejected", "reason": "this run is refused by the test"}
        old = self.runs.get(run_id)
        if old is None:
            self.runs[run_id] = run
            return {"id": run_id, "result": "stored", "reason": None}
        if old == run:
            return {"id": run_id, "result": "unchanged", "reason": None}
        old_trace, new_trace = old.get("trace", []), run.get("trace", [])
        if old["status"] in _TERMINAL and run["status"] in _TERMINAL and old["status"] != run["status"]:
            return {"id": run_id, "result": "rejected", "reason": f"run already ended {old['status']}"}
        common = min(len(old_trace), len(new_trace))
        if old_trace[:common] != new_trace[:common]:
            return {"id": run_id, "result": "rejected", "reason": "other events at a stored seq"}
        newer = (_rank(run["status"]), len(new_trace)) > (_rank(old["status"]), len(old_trace))
        if newer and old["status"] not in _TERMINAL:
            self.runs[run_id] = run
            return {"id": run_id, "result": "stored", "reason": None}
        return {"id": run_id, "result": "unchanged", "reason": None}


def make_handler(store: ReportStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            if store.max_body is not None and length > store.max_body:
                self._answer(413, {"title": "too large", "detail": f"{length} bytes"})
                return
            if self.path != "/api/v1/runs.report":
                self._answer(404, {"title": "not found"})
                return
            if self.headers.get("Authorization") != f"Bearer {store.token}":
                self._answer(401, {"title": "bad token", "detail": "unknown device token"})
                return
            with store.lock:
                if store.fail_next > 0:
                    store.fail_next -= 1
                    self._answer(503, {"title": "unavailable", "detail": "the test says so"})
                    return
                runs = json.loads(raw)["runs"]
                if not 1 <= len(runs) <= 100:
                    self._answer(422, {"title": "bad batch", "detail": f"{len(runs)} runs"})
                    return
                if any(str(r["id"]) in store.poison_ids for r in runs):
                    store.server_faults += 1
                    self._answer(500, {"title": "Internal server error", "detail": "the test's bug"})
                    return
                store.requests.append([str(r["id"]) for r in runs])
                answers = [store.apply(r) for r in runs]
            self._answer(200, {"runs": answers})

    return Handler


class ReportServer:
    """Runs the contract server on 127.0.0.1 in a thread."""

    def __init__(self, token: str, port: int = 0) -> None:
        self.store = ReportStore(token)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self.store))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ReportServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
