"""Schedules: runs dispatched on a cron schedule.

models.py      Schedule (cron + timezone + inputs for one workflow on one device; next_fire_at)
cron.py        parse_cron / parse_timezone / next_fire_after: APScheduler's CronTrigger, with
               crontab's weekday numbers and day-of-month-or-day-of-week rule kept
schemas.py     request/response bodies (camelCase, unknown fields refused)
service.py     create/list/get/update/delete; dispatch_due_schedules(now): one run per fire,
               decided by a conditional UPDATE of next_fire_at
jobs.py        register_jobs: the polling job (every `schedule_poll_s` seconds)
endpoints.py   the HTTP operations
"""
