"""The asyncio WeCom client's tests."""
