"""Runs: ingestion of `runs.report`, listing, dispatch (trigger, claim, cancel), `run.updated` over SSE,
retention, export and stats."""
