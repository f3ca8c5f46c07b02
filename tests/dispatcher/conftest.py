"""The dispatcher's tests: callbacks through routers, filters and middlewares."""
