"""The key-value store's contract, on memory and on Redis."""
