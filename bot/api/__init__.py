"""The admin API under /api/v1: JSON, bearer tokens with roles, one error shape, OpenAPI."""
