"""Types and bounds shared by request models, so the OpenAPI document states what the API accepts."""

from typing import Annotated

from pydantic import BeforeValidator, Field

MAX_BIGINT = 2**63 - 1  # BIGINT columns and ids
MAX_INT = 2**31 - 1  # INTEGER columns
MAX_FEN = 10**11  # ¥1,000,000,000.00: above any real order or coupon

# Strings that pydantic strips before checking their length: at least one character that is not
# whitespace (and, like every string here, no NUL).
NON_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"
NO_NUL = r"^[^\x00]*$"


def _whole_number(value):
    # JSON Schema's "integer" admits 3.0; bools and numeric strings are not numbers.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


def both_or_neither(a: str, b: str) -> list[dict]:
    """JSON Schema for "give both a and b (as numbers), or neither"."""
    return [
        {"if": {"properties": {a: {"type": "number"}}, "required": [a]},
         "then": {"properties": {b: {"type": "number"}}, "required": [b]}},
        {"if": {"properties": {b: {"type": "number"}}, "required": [b]},
         "then": {"properties": {a: {"type": "number"}}, "required": [a]}},
    ]


def whole(ge: int, le: int) -> type[int]:
    """A bounded WholeNumber. The bounds sit inside the type so that `whole(…) | None` still
    shows them as minimum/maximum (on the union they would be lost from the schema)."""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_whole_number)]
