"""Approval notifications by e-mail: approvers are told through the configured SMTP server.

models.py      ApprovalEmail (the outbox: one row per approval and recipient)
service.py     enqueue for a waiting approval (exactly once per recipient), compose the message
mailer.py      send_due: the background job that sends what is due, with retries and backoff
"""
