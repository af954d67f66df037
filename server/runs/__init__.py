"""Runs: ingestion of `runs.report`, listing, dispatch (trigger, claim, cancel), `run.updated` over SSE,
retention, export and stats.

    models.py      Run, TraceEventRow (run_id, seq), RunEvent (the SSE id log), Artifact
    schemas.py     request/response bodies (camelCase, unknown fields refused)
    report.py      ingest_reports(): the idempotency rules of docs/http-api.md, enforced in the database
    service.py     summary_json, record_changes (event + after-commit wake-up), get_run, run_json,
                   trigger_run, has_claimable_run, claim_run, cancel_run,
                   cancel_requested_run_ids
    batches.py     trigger_batch (one run per phone: ids or a tag, one batchId), batch_json (progress)
    waiting.py     why_waiting: why a queued run waits (backoff, device offline/busy/revoked, bridge, tag)
    pausing.py     pause_run, resume_run (the server owns `paused`; the step gate tells the phone)
    retries.py     retry_run (the same version, device and inputs again), the workflow's automatic retry
    listing.py     list_runs, RunFilters, RunSort, keyset cursors (shared by the list, export, dashboard)
    frames.py      a step's screen (frame-SEQ.jpg + meta): parse_meta, record_frame (`run.frame`), frames_of
    exec_log.py    execution_log(): a run's decisions (edges, conditions, retries, vars) from its trace
    events.py      RunEventHub (one per process), event_stream(), GET /api/v1/events
    event_order.py EventOrder: the tail hands events out in id order without a lock among writers
    pg_notify.py   NOTIFY at commit / LISTEN per process (PostgreSQL cross-process wake-ups)
    wakeup.py      GET /api/v1/devices/me/wakeup: an idle bridge's long poll, answered when a run it
                   may take is queued (woken by the event tail: wakeup_waiters.py)
    retention.py   purge_expired_runs, compact_sqlite, register_jobs (APScheduler)
    export.py      export_chunks(): the streamed JSON array or CSV, with the list's filters
    stats.py       compute_stats()
    sql.py         dialect seams (ON CONFLICT inserts, bulk trace rows, day bucket)
    endpoints.py   the HTTP operations
"""
