"""Schedules: runs dispatched on a cron schedule.

models.py      Schedule (cron + timezone + inputs for one workflow on one device; next_fire_at)
schemas.py     request/response bodies (camelCase, unknown fields refused)
service.py     parse_cron/next_fire_time (APScheduler's CronTrigger), create/list/get/update/delete,
               dispatch_due_schedules(now): one run per fire, enforced by a conditional UPDATE
jobs.py        register_jobs: the polling job (every `schedule_poll_s` seconds)
endpoints.py   the HTTP operations
"""
