"""Durable background jobs: enqueue in the caller's transaction, run by a leasing runner."""

from bot.jobs.queue import enqueue
from bot.jobs.registry import JobContext, Retry, tasks
from bot.jobs.runner import JobRunner

__all__ = ["JobContext", "JobRunner", "Retry", "enqueue", "tasks"]
