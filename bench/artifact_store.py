"""Benchmark the artifact store: a frame's upload and read through the API, per store.

    .venv/bin/python bench/artifact_store.py [--frames 200]

A server app (in this process, SQLite in a temporary folder) takes `--frames` frame uploads of
60 KB (the bridge's largest frame) for one run through `POST /api/v1/runs/{id}/artifacts`, then
reads each back with `GET .../artifacts/{name}`; once with the directory store, once with the S3
store against moto's S3 server on a free 127.0.0.1 port (the real wire protocol, a local server:
a cloud bucket adds its network round trip). Also the account's usage query (`GET /api/v1/account`)
once all frames are stored. Target: upload p95 at most 50 ms on the directory store.

Prints a table and writes `bench/results/artifact_store.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from machine_info import machine_info, print_table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from server.app import create_app  # noqa: E402
from server.artifact_store import store_from_settings  # noqa: E402
from server.artifact_store.s3 import S3Store  # noqa: E402
from server.db import make_engine, make_session_factory  # noqa: E402
from server.migrate import upgrade  # noqa: E402
from server.settings import Settings  # noqa: E402
from tests.server.factories import Db, auth, create_account, create_device, create_workflow  # noqa: E402
from tests.server.runs_support import new_run_id, run_report  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "artifact_store.json"
FRAME = b"\xff\xd8\xff\xe0" + bytes(60_000 - 4)
TARGET_UPLOAD_P95_MS = 50.0


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered) * 1000, 2),
        "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 2),
    }


def bench_store(settings: Settings, frames: int) -> dict[str, Any]:
    engine = make_engine(settings.database_url)
    upgrade(engine)
    db = Db(
        url=settings.database_url, kind="sqlite", engine=engine, session_factory=make_session_factory(engine)
    )
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    uploads: list[float] = []
    reads: list[float] = []
    with TestClient(create_app(settings)) as client:
        rid = new_run_id()
        client.post(
            "/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=1)]}, headers=auth(dev.token)
        )
        for seq in range(frames):
            name = f"frame-{seq:05d}.jpg"
            started = time.perf_counter()
            answer = client.post(
                f"/api/v1/runs/{rid}/artifacts",
                files={"file": (name, FRAME, "image/jpeg")},
                data={"name": name},
                headers=auth(dev.token),
            )
            uploads.append(time.perf_counter() - started)
            assert answer.status_code == 201, answer.text
        for seq in range(frames):
            started = time.perf_counter()
            body = client.get(f"/api/v1/runs/{rid}/artifacts/frame-{seq:05d}.jpg", headers=auth(acc.token))
            reads.append(time.perf_counter() - started)
            assert body.content == FRAME
        started = time.perf_counter()
        used = client.get("/api/v1/account", headers=auth(acc.token)).json()["artifactBytesUsed"]
        usage_s = time.perf_counter() - started
        assert used == frames * len(FRAME)
    engine.dispose()
    return {"upload_ms": _ms(uploads), "read_ms": _ms(reads), "usage_ms": round(usage_s * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine_info(), "frames": args.frames, "frame_bytes": len(FRAME)}
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        with tempfile.TemporaryDirectory() as folder:
            base = Settings(
                database_url=f"sqlite:///{folder}/directory.db", run_migrations=False, start_scheduler=False
            )
            directory = base.model_copy(update={"artifact_dir": Path(folder) / "artifacts"})
            results["directory"] = bench_store(directory, args.frames)
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            s3 = base.model_copy(
                update={
                    "database_url": f"sqlite:///{folder}/s3.db",
                    "artifact_store": "s3",
                    "s3_endpoint_url": f"http://{host}:{port}",
                    "s3_bucket": bucket,
                    "s3_region": "us-east-1",
                    "s3_access_key_id": "bench",
                    "s3_secret_access_key": SecretStr("bench-secret"),
                }
            )
            store = store_from_settings(s3)
            assert isinstance(store, S3Store)
            store.client.create_bucket(Bucket=bucket)
            results["s3"] = bench_store(s3, args.frames)
    finally:
        moto.stop()
    results["target_upload_p95_ms"] = TARGET_UPLOAD_P95_MS
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    rows: list[tuple[str, str, str]] = []
    for kind in ("directory", "s3"):
        r = results[kind]
        note = f"target p95 <= {TARGET_UPLOAD_P95_MS:g} ms" if kind == "directory" else "moto on 127.0.0.1"
        rows.append(
            (
                f"{kind}: upload 60 KB frame p50 / p95",
                f"{r['upload_ms']['p50']} / {r['upload_ms']['p95']}",
                note,
            )
        )
        rows.append((f"{kind}: read frame p50 / p95", f"{r['read_ms']['p50']} / {r['read_ms']['p95']}", "ms"))
        rows.append((f"{kind}: account usage ({args.frames} frames)", f"{r['usage_ms']}", "ms"))
    print_table(rows)


if __name__ == "__main__":
    main()
