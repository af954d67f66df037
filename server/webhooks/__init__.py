"""Outgoing webhooks: an account's endpoints hear of runs that end or fail, approvals that wait and
devices that go offline, signed as Standard Webhooks and retried with backoff.

models.py      WebhookEndpoint, WebhookDelivery (the outbox and its log), WebhookAttempt, DeviceOfflineNotice
signing.py     secrets, message ids and the three signature headers (the `standardwebhooks` library)
service.py     endpoints CRUD, enqueue (exactly once per event and endpoint), the delivery log, redeliver
events.py      where each event is enqueued: the runs-ended listener, approval_waiting, offline devices
delivery.py    deliver_due: lease, send, record, back off (the background job's work)
jobs.py        register_jobs: delivery every `webhook_poll_s`, the offline-device check
schemas.py     request/response bodies
endpoints.py   the HTTP operations
"""
