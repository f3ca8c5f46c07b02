"""WeCom glue: callback crypto, typed events, the async API client."""
