"""Customers (WeCom external contacts) and their binding to guide, store and channel."""
