"""The `phoneflow` CLI for a running server: login profiles, workflows, runs, devices, approvals,
schedules. It speaks only the HTTP API (docs/http-api.md) and uses `interpreter` for local
validation, traces and reports; it never imports the server or the bridge."""
