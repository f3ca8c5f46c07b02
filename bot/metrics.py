"""Prometheus metrics, one registry for the process (scraped at /metrics)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

CALLBACKS = Counter(
    "wecom_callbacks_total",
    "WeCom callbacks received, by event type and outcome",
    ["type", "outcome"],
    registry=REGISTRY,
)
CALLBACK_LATENCY = Histogram(
    "wecom_callback_ack_seconds",
    "Time from receiving a callback to answering it",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
JOBS = Counter("jobs_total", "Jobs finished, by kind and outcome", ["kind", "outcome"], registry=REGISTRY)
JOB_LATENCY = Histogram(
    "job_latency_seconds",
    "Time from a job's run-at to its completion",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge("jobs_queue_depth", "Jobs queued, running or dead, by status (counted up to 10,000)", ["status"], registry=REGISTRY)
WECOM_CALLS = Counter(
    "wecom_api_calls_total", "Calls to the WeCom API, by endpoint and errcode", ["endpoint", "errcode"],
    registry=REGISTRY,
)
WECOM_CALL_LATENCY = Histogram(
    "wecom_api_call_seconds", "WeCom API call latency", ["endpoint"], registry=REGISTRY
)
CALLBACK_SPOOL_PENDING = Gauge(
    "wecom_callback_spool_pending", "Callbacks kept in the local spool, waiting for the database", registry=REGISTRY
)
CALLBACK_SPOOL_DRAINED = Counter(
    "wecom_callback_spool_drained_total", "Spooled callbacks moved into the inbox", registry=REGISTRY
)
