"""Durable background jobs: enqueue in the caller's transaction, run by a leasing runner."""

from bot.jobs.queue import enqueue, insert_jobs, job_row
from bot.jobs.registry import JobContext, JobOptions, Priority, Retry, tasks
from bot.jobs.runner import JobRunner

__all__ = ["JobContext", "JobOptions", "JobRunner", "Priority", "Retry", "enqueue", "insert_jobs", "job_row",
           "tasks"]
