"""/openapi.json says what the API accepts: requests generated from its schemas are not refused
as malformed.

For every operation of the account API, `from_schema` (below) draws path ids, query values and
bodies from the operation's own schemas (the account id and key are the tenant's: auth is not a
format). The API may answer 404 (a drawn id names nothing), 409-like refusals of state, or
success; what it must not answer is a 400 whose code says a parameter or body is malformed
(1000 invalid id, 1003 invalid parameter, 1004 invalid body): that would mean the schema allows
what the server refuses. Requests go over real HTTP to uvicorn serving the app in this test's
loop; hypothesis runs in a thread.

hypothesis-jsonschema 0.23.1 was tried: its object strategy uses Hypothesis internals that the
pinned Hypothesis no longer has (`'many' object has no attribute 'more'`), hence the small
generator here, covering the keywords our document uses.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from tests.support.served import served
from tests.support.tenants import Tenant

MALFORMED = {1000, 1003, 1004}
# Webhooks authenticate with a URL token and take 8x8's event objects; set-provider switches
# the account to 8x8 (needs an admin key): neither is a format question for this test.
SKIPPED = {"webhook-sms", "webhook-chatapps", "webhook-voice", "set-provider"}
# Definition bodies: rules no JSON schema can state (graph, templates, expression syntax).
SEMANTIC_DEFINITION_CODES = {5006, 5008, 5012, 5013, 5014, 5015, 5017}
EXAMPLES = 15
# Every JSON body refuses NUL characters (1004), a rule of the whole API stated in its
# description rather than in each string's schema: generated text leaves them out.
TEXT = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))  # JSON-encodable
# Operations whose schema still allows what the server refuses; each entry says what. Strict:
# the test fails when one of them is fixed (remove it here) or another one appears.
KNOWN: dict[str, str] = {
    # A literal input of a typed field (an HttpRequest url, a timespan) must have its format
    # unless it is a {{ }} expression: the schema can only say "string".
    "create-definition": "step inputs: a literal must match its format, an expression need not",
    "update-existing-definition": "same body as create-definition",
}


def merged(rest: dict[str, Any], option: dict[str, Any]) -> dict[str, Any]:
    """An anyOf option applied on top of its siblings, as JSON Schema means it: an object
    option's `properties` narrow the siblings' and its `required` adds to theirs."""
    combined = {**rest, **option}
    if "properties" in rest and "properties" in option:
        combined["properties"] = {**rest["properties"], **option["properties"]}
    if "required" in rest and "required" in option:
        combined["required"] = sorted({*rest["required"], *option["required"]})
    return combined


def from_schema(schema: dict[str, Any], document: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for `schema` (the keywords pydantic and FastAPI emit)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: from_schema(document["components"]["schemas"][name], document))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:  # sibling keywords (`format`, ...) apply to every option
            rest = {k: v for k, v in schema.items() if k not in (key, "default", "title")}
            return st.one_of(
                [from_schema(merged(rest, option), document) for option in schema[key]]
            )
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": one}, document) for one in kind])
    if kind == "string":
        if schema.get("format") == "uuid":
            return st.uuids().map(str)
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat())
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: len(s) <= schema.get("maxLength", len(s))
            )
        return st.text(
            TEXT, min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 40)
        )
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(
            from_schema(schema.get("items", {}), document),
            min_size=schema.get("minItems", 0),
            max_size=schema.get("maxItems", 3),
        )
    if kind == "object" and "properties" in schema:
        required = set(schema.get("required", []))
        fields = {name: from_schema(sub, document) for name, sub in schema["properties"].items()}
        return st.fixed_dictionaries(
            {name: fields[name] for name in fields if name in required},
            optional={name: fields[name] for name in fields if name not in required},
        )
    scalars = st.none() | st.booleans() | st.integers() | st.text(TEXT, max_size=20)
    return st.dictionaries(st.text(TEXT, max_size=20), scalars, max_size=5)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/api/v1/") and operation["operationId"] not in SKIPPED:
                found.append((method.upper(), path, operation))
    return found


def request_strategy(
    method: str, path: str, operation: dict[str, Any], document: dict[str, Any], account: str
) -> st.SearchStrategy[httpx.Request]:
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for parameter in operation.get("parameters", []):
        name, where, schema = parameter["name"], parameter["in"], parameter["schema"]
        if name == "accountId":
            continue
        values = from_schema(schema, document)
        if where == "path":
            parts[f"path:{name}"] = values.filter(lambda v: v not in ("", ".", ".."))
        else:
            parts[f"query:{name}"] = st.none() | values
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is not None:
        parts["body"] = from_schema(content["schema"], document)

    def build(drawn: dict[str, Any]) -> httpx.Request:
        url = path.replace("{accountId}", quote(account, safe=""))
        params: dict[str, str] = {}
        for key, value in drawn.items():
            where, _, name = key.partition(":")
            if where == "path":
                url = url.replace(f"{{{name}}}", quote(str(value), safe=""))
            elif where == "query" and value is not None:
                params[name] = str(value).lower() if isinstance(value, bool) else str(value)
        body = drawn.get("body")
        return httpx.Request(method, url, params=params, json=body if "body" in drawn else None)

    return st.fixed_dictionaries(parts).map(build)


def refusal(operation: dict[str, Any], response: httpx.Response) -> str | None:
    """Why `response` shows the schema allowing what the server refuses, or None."""
    if response.status_code == 422:
        return "422"
    if response.status_code != 400:
        return None
    code = response.json().get("code")
    if code in MALFORMED:
        return f"{code}: {response.json().get('message')}"
    if operation["operationId"] in ("create-definition", "update-existing-definition"):
        problems = {p["code"] for p in response.json().get("errors", [])} or {code}
        if not problems <= SEMANTIC_DEFINITION_CODES:
            return f"{code}: {response.json().get('errors')}"
    return None


def first_refusal(
    http: httpx.Client, operation: dict[str, Any], strategy: st.SearchStrategy[httpx.Request]
) -> str | None:
    """The first generated request of `operation` the server refuses as malformed, if any.
    Derandomized: the same examples every run, so the result is stable."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=strategy)
    def check(request: httpx.Request) -> None:
        headers = {"Content-Type": "application/json"} if request.content else None
        response = http.send(
            http.build_request(
                request.method, request.url, content=request.content, headers=headers
            )
        )
        why = refusal(operation, response)
        assert why is None, (
            f"{operation['operationId']}: {request.method} {request.url} "
            f"{request.content[:300]!r} -> {response.status_code} {why}"
        )

    try:
        check()
    except AssertionError as error:
        return str(error).splitlines()[0]
    except ExceptionGroup as errors:  # several distinct refusals: report the first
        return str(errors.exceptions[0]).splitlines()[0]
    return None


async def test_generated_requests_are_not_refused_as_malformed(
    context: AppContext, tenant: Tenant
) -> None:
    app = create_app(context)
    document = app.openapi()
    failures: dict[str, str] = {}

    def check_all(url: str) -> None:
        with httpx.Client(base_url=url, headers=tenant.headers, timeout=30) as http:
            for method, path, operation in operations(document):
                strategy = request_strategy(method, path, operation, document, tenant.account_id)
                why = first_refusal(http, operation, strategy)
                if why is not None:
                    failures[operation["operationId"]] = why

    async with served(app) as url:
        await asyncio.to_thread(check_all, url)
    assert set(failures) == set(KNOWN), "\n".join(
        f"{operation}: {failures.get(operation, 'no longer refused: remove it from KNOWN')}"
        for operation in set(failures) ^ set(KNOWN)
    )


async def test_parameters_document_their_formats(context: AppContext) -> None:
    """Every id parameter states its format, times are date-times and list filters are enums:
    without them the generator above (and any client generator) draws what the API refuses."""
    document = create_app(context).openapi()
    seen: dict[str, list[dict[str, Any]]] = {}
    for _method, _path, operation in operations(document):
        for parameter in operation.get("parameters", []):
            seen.setdefault(parameter["name"], []).append(parameter["schema"])
    assert {s.get("format") for s in seen["definitionId"]} == {"uuid"}
    assert {s.get("pattern") for s in seen["workflowId"] if s.get("type") == "string"} >= {
        r"^[0-9a-fA-F]{24}$"
    }
    assert {s.get("format") for s in seen["startTimeFrom"] + seen["startTimeTo"]} == {"date-time"}
    statuses = [s for s in seen["status"]]
    assert all(
        "enum" in option
        for s in statuses
        for option in s.get("anyOf", [s])
        if option.get("type") == "string"
    )


# Hypothesis warns about the size of the falsifying example's repr (a whole definition).
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
