"""Schemathesis over every operation of /api/v1/openapi.json: no input answers 5xx, every answer
matches the schema the document gives for it, and data the document calls valid is accepted (or
meets the state of the data: 404, 409, 422), so the document says truthfully what the API takes.

The app runs in the test's event loop; schemathesis (synchronous, requests) runs in a thread beside
it. Each operation is tried with generated path parameters and with the seeded rows' keys, positive
and negative data, a bounded number of examples each.
"""

from __future__ import annotations

import asyncio

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, positive_data_acceptance, response_schema_conformance
from schemathesis.config import PositiveDataAcceptanceConfig

EXAMPLES = 20
# The seeded row a path parameter names where its name alone does not say (several routes use {code}).
REAL_KEYS = {
    "/api/v1/stores/{code}": {"code": "code"},
    "/api/v1/channels/{code}": {"code": "channel"},
    "/api/v1/qrcodes/{code}": {"code": "qrcode"},
    "/api/v1/coupons/{code}": {"code": "coupon"},
}


def _real_path_parameters(path: str, names: list[str], ids: dict[str, str]) -> dict[str, str]:
    explicit = next((v for prefix, v in REAL_KEYS.items() if path.startswith(prefix)), {})
    return {name: ids[explicit.get(name, name)] for name in names}


def _examples(strategy, mode: GenerationMode, base_url: str, headers: dict):
    """A hypothesis test that sends each generated case and checks the answer."""

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case):
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        checks = [not_a_server_error]
        if response.status_code < 300 or mode == GenerationMode.POSITIVE:
            checks.append(response_schema_conformance)
        if mode == GenerationMode.POSITIVE:
            checks.append(positive_data_acceptance)
        case.validate_response(response, checks=checks)

    return run


def fuzz(document: dict, base_url: str, headers: dict, ids: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_dict(document)
    # Schema-valid data may still name rows that do not exist or break a rule between two fields
    # (422), or meet the state of the data (404, 409); everything else must be accepted.
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", 404, 409, 422])
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        names = [p.name for p in operation.path_parameters]
        real = _real_path_parameters(operation.path, names, ids) if names else None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in ([None, real] if real else [None]):
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
                try:
                    _examples(strategy, mode, base_url, headers)()
                except (Exception, BaseExceptionGroup) as exc:  # note each failing operation, go on
                    failures.append(f"{operation.method.upper()} {operation.path} [{mode.value}]: "
                                    f"{str(exc)[:1500]}")
    return failures


async def test_no_operation_answers_5xx_or_off_schema(seeded):
    client = seeded.client
    document = await (await client.get("/api/v1/openapi.json")).json()
    base_url = str(client.make_url("")).rstrip("/")
    failures = await asyncio.to_thread(fuzz, document, base_url, seeded.auth["hq"], seeded.ids)
    assert not failures, "\n\n".join(failures)
