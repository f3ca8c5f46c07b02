"""Rules a JSON schema cannot state — between two fields, against the clock, in bytes rather than
characters. Validators raise `rule_broken(...)`; the API answers those 422 (a well-formed request it
cannot take), and keeps 400 for input that breaks the published schema."""

from __future__ import annotations

from pydantic_core import PydanticCustomError

RULE_BROKEN = "rule_broken"


def rule_broken(message: str) -> PydanticCustomError:
    return PydanticCustomError(RULE_BROKEN, message)
