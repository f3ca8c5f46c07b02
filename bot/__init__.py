"""WeCom store-guide assistant: the service (web app, WeCom glue, storage, jobs, admin API)."""
