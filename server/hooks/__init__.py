"""Incoming hooks: a secret URL per workflow (`POST /api/v1/hooks/{token}`) that queues a run of its
published version on the device chosen when the hook was made, with the request's body as inputs.

models.py      WorkflowHook (the token's sha256, the device, the rate), HookHit (per-minute counts)
service.py     create / list / revoke; fire (rate limit, inputs check, the run)
schemas.py     request/response bodies
endpoints.py   the HTTP operations
"""
