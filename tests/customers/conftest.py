"""The customers' tests: bindings, welcomes and handovers, in the stores' world (tests/stores/conftest.py)."""
