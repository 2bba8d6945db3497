"""VT's API: submit by type, case and body; read status and evidence; the document that says so.

Run against the in-memory store and the SQLite store. Every response is
checked against the OpenAPI document: its status is documented for the
operation, its headers are there, and its body fits the documented schema.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from structlog.testing import capture_logs

import gateway.vectors
from adapters.http.api import API_PREFIX, create_api_app, load_openapi
from adapters.http.auth import ApiTokens, hash_token
from adapters.store import SqlStore
from gateway.bootstrap import Core, Paths, load_core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Contracts
from gateway.domain.delivery import Status, sent
from gateway.domain.errors import TransientError
from gateway.domain.escalation import EscalationReason, propose
from gateway.domain.routing import enrichment_partners
from gateway.resources import data_dir
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Accepted, Verifier, verify_message
from gateway.service.ports import Store
from tests.fakes.store import MemoryStore

NOW = gateway.vectors.VECTOR_NOW
TOKEN = "case-system-token-for-tests-only-0123456789"  # noqa: S105 - a test token
CALLER = "zaaksysteem"
TIEL = "GM0281"
ZALTBOMMEL = "GM0297"
ROUTED_PARTNERS_OF_TIEL = {"jbg", "lt-tiel", "rvdk", "vhh-gz"}

Client = TestClient[web.Request, web.Application]


# --- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def core() -> Core:
    return load_core(Paths.defaults())


@pytest.fixture(scope="module")
def contracts(core: Core) -> Contracts:
    return gateway.vectors.with_test_keys(core.contracts)


@pytest.fixture(scope="module")
def hub(core: Core, contracts: Contracts) -> Hub:
    verifier = Verifier(contracts, core.validator, "vt-gz")
    return Hub(
        verifier, gateway.vectors.vector_key("vt-gz"), WorkingDayCalendar.for_region(core.region)
    )


@pytest.fixture(scope="module")
def examples() -> dict[str, dict[str, Any]]:
    directory = data_dir("schemas") / "examples"
    return {e["type"]: e for e in gateway.vectors.load_examples(directory)}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        return MemoryStore()
    sql: SqlStore = request.getfixturevalue("sqlite_store")
    return sql


def mounted(api: web.Application) -> web.Application:
    """The API as the gateway runs it: a sub-application under /api/v1."""
    root = web.Application()
    root.add_subapp(API_PREFIX, api)
    return root


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    store: Store,
    hub: Hub,
    core: Core,
) -> Client:
    tokens = ApiTokens.from_mapping({CALLER: hash_token(TOKEN), "other": hash_token("x" * 43)})
    api = create_api_app(store=store, hub=hub, region=core.region, tokens=tokens, clock=lambda: NOW)
    return await aiohttp_client(mounted(api))


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def request_of(example: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A submission made of an example envelope's type, case and body."""
    submission = {"type": example["type"], "case": example["case"], "body": example["body"]}
    copy: dict[str, Any] = json.loads(json.dumps(submission | changes))
    return copy


def enrichment_for_tiel(examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    example = examples["enrichment.request"]
    return request_of(example, case={"ref": example["case"]["ref"], "gemeente": TIEL})


# --- the OpenAPI document as the judge of every response -------------------------

DOCUMENT = load_openapi()
_URI = "urn:test:openapi.json"
_REGISTRY: Registry[Any] = Registry().with_resource(_URI, DRAFT202012.create_resource(DOCUMENT))


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """The object a local `$ref` points at (KeyError when it points nowhere)."""
    while "$ref" in node:
        target: Any = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return dict(node)


def schema_validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{_URI}#{pointer}"}, registry=_REGISTRY)


async def documented(response: Any, path: str, method: str) -> Any:
    """The response's JSON body, after checking it against the operation in the document."""
    operation = DOCUMENT["paths"][path][method]
    status = str(response.status)
    assert status in operation["responses"], f"{method} {path}: {status} is not documented"
    declared = _resolve(operation["responses"][status])
    for name, reference in declared.get("headers", {}).items():
        header = _resolve(reference)
        if header.get("required"):
            assert name in response.headers, f"{method} {path} {status}: no {name} header"
            Draft202012Validator(header["schema"]).validate(response.headers[name])
    assert response.content_type == "application/json"
    body = await response.json()
    schema = declared["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema_validator(schema["$ref"].removeprefix("#")).validate(body)
    else:
        Draft202012Validator(schema).validate(body)
    return body


async def submitted(client: Client, submission: dict[str, Any]) -> list[dict[str, str]]:
    response = await client.post(f"{API_PREFIX}/messages", json=submission, headers=AUTH)
    body = await documented(response, "/messages", "post")
    assert response.status == 201, body
    messages: list[dict[str, str]] = body["messages"]
    return messages


# --- submitting ----------------------------------------------------------------------


async def test_an_enrichment_request_without_recipients_goes_to_every_enrichment_partner(
    client: Client, examples: dict[str, dict[str, Any]], core: Core, contracts: Contracts
) -> None:
    """Without recipients, §5.1's routing chooses them: one message per enrichment partner."""
    messages = await submitted(client, enrichment_for_tiel(examples))

    routed = {c.party for c in enrichment_partners(core.region, contracts, TIEL)}
    assert routed == ROUTED_PARTNERS_OF_TIEL
    assert {m["recipient"] for m in messages} == routed
    assert len(messages) == len(routed)
    assert len({m["id"] for m in messages}) == len(messages)


async def test_the_location_header_names_the_first_message(
    client: Client, examples: dict[str, dict[str, Any]]
) -> None:
    """201 carries the Location of the first message created, under the API's prefix."""
    response = await client.post(
        f"{API_PREFIX}/messages", json=enrichment_for_tiel(examples), headers=AUTH
    )
    body = await documented(response, "/messages", "post")
    assert response.headers["Location"] == f"{API_PREFIX}/messages/{body['messages'][0]['id']}"


async def test_each_submitted_message_is_stored_queued_in_the_outbox(
    client: Client, store: Store, examples: dict[str, dict[str, Any]]
) -> None:
    """Every message is stored with status queued and waits in the outbox, in one go."""
    messages = await submitted(client, enrichment_for_tiel(examples))

    async with store.transaction() as uow:
        stored = [await uow.messages.get("vt-gz", m["id"]) for m in messages]
        depth = await uow.outbox.depth()
        waiting = await uow.outbox.claim(
            limit=10, now=NOW, lease=timedelta(seconds=30), claimer="test"
        )
    assert all(s is not None and s.status is Status.QUEUED for s in stored)
    assert [s.recipient for s in stored if s is not None] == [m["recipient"] for m in messages]
    assert depth == len(messages)
    assert {item.message_id for item in waiting} == {m["id"] for m in messages}


async def test_each_submitted_message_is_signed_by_vt(
    client: Client,
    store: Store,
    examples: dict[str, dict[str, Any]],
    core: Core,
    contracts: Contracts,
) -> None:
    """The stored bytes pass the recipient's own verification as a message signed by VT."""
    messages = await submitted(client, enrichment_for_tiel(examples))

    for message in messages:
        async with store.transaction() as uow:
            stored = await uow.messages.get("vt-gz", message["id"])
        assert stored is not None
        outcome = verify_message(
            stored.raw,
            transport_identity="vt-gz",
            now=NOW,
            verifier=Verifier(contracts, core.validator, message["recipient"]),
        )
        assert isinstance(outcome, Accepted), outcome
        assert outcome.envelope.sender == "vt-gz"
        assert outcome.envelope.recipient == message["recipient"]
        assert outcome.digest == stored.digest


async def test_named_recipients_replace_the_routing(
    client: Client, examples: dict[str, dict[str, Any]]
) -> None:
    """Recipients named in the request are the only ones, in their order."""
    messages = await submitted(
        client, enrichment_for_tiel(examples) | {"recipients": ["rvdk", "lt-tiel"]}
    )
    assert [m["recipient"] for m in messages] == ["rvdk", "lt-tiel"]


async def test_a_wrong_body_is_refused_as_schema_invalid_with_its_pointer(
    client: Client, store: Store, examples: dict[str, dict[str, Any]]
) -> None:
    """A body that fails its type's schema: 422 SCHEMA_INVALID, pointing into the envelope."""
    submission = enrichment_for_tiel(examples)
    submission["body"]["personen"][0]["bsn"] = "123456789"  # fails the 11-test

    response = await client.post(f"{API_PREFIX}/messages", json=submission, headers=AUTH)

    body = await documented(response, "/messages", "post")
    assert response.status == 422
    assert body["code"] == "SCHEMA_INVALID"
    assert body["pointer"] == "/body/personen/0/bsn"
    assert "123456789" not in body["detail"]
    async with store.transaction() as uow:
        assert await uow.outbox.depth() == 0


async def test_moviera_for_zaltbommel_is_not_permitted(
    client: Client, examples: dict[str, dict[str, Any]]
) -> None:
    """Moviera is not active in Zaltbommel (annex 5): 422 NOT_PERMITTED at the municipality."""
    example = examples["overdracht.notice"]
    submission = request_of(
        example,
        case={"ref": example["case"]["ref"], "gemeente": ZALTBOMMEL},
        recipients=["moviera"],
    )

    response = await client.post(f"{API_PREFIX}/messages", json=submission, headers=AUTH)

    body = await documented(response, "/messages", "post")
    assert response.status == 422
    assert (body["code"], body["pointer"]) == ("NOT_PERMITTED", "/case/gemeente")


async def test_an_answer_to_an_unknown_message_is_unknown_thread(
    client: Client, examples: dict[str, dict[str, Any]]
) -> None:
    """reply_to must name a message the gateway knows: 422 UNKNOWN_THREAD otherwise."""
    example = examples["overdracht.withdrawal"]
    submission = request_of(example, reply_to="00000000-0000-4000-8000-000000000000")

    response = await client.post(f"{API_PREFIX}/messages", json=submission, headers=AUTH)

    body = await documented(response, "/messages", "post")
    assert (response.status, body["code"], body["pointer"]) == (422, "UNKNOWN_THREAD", "/reply_to")


async def test_a_withdrawal_answers_the_notice_in_its_thread(
    client: Client, store: Store, examples: dict[str, dict[str, Any]]
) -> None:
    """An answer goes to the other party of the message it answers, in that message's thread."""
    [notice] = await submitted(client, request_of(examples["overdracht.notice"]))
    withdrawal = request_of(examples["overdracht.withdrawal"], reply_to=notice["id"])

    [answer] = await submitted(client, withdrawal)

    assert answer["recipient"] == notice["recipient"]
    async with store.transaction() as uow:
        stored = await uow.messages.get("vt-gz", answer["id"])
    assert stored is not None
    assert (stored.thread, stored.reply_to) == (notice["id"], notice["id"])


async def test_a_body_that_is_not_json_is_malformed(client: Client) -> None:
    """Bytes that are not JSON: 400 MALFORMED."""
    response = await client.post(
        f"{API_PREFIX}/messages",
        data=b"{not json",
        headers=AUTH | {"Content-Type": "application/json"},
    )
    body = await documented(response, "/messages", "post")
    assert (response.status, body["code"]) == (400, "MALFORMED")


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda s: s | {"extra": 1}, ""),
        (lambda s: {k: v for k, v in s.items() if k != "case"}, ""),
        (lambda s: s | {"body": []}, "/body"),
        (lambda s: s | {"type": "not.a.type"}, "/type"),
        (lambda s: s | {"case": {"ref": "VT-2026-000123"}}, "/case"),
        (lambda s: s | {"recipients": ["jbg", "jbg"]}, "/recipients"),
        (lambda s: s | {"recipients": []}, "/recipients"),
        (lambda s: s | {"reply_to": "NOT-A-UUID"}, "/reply_to"),
        (lambda s: [s], ""),
        (lambda s: s | {"body": s["body"] | {"reden": "\ud800"}}, ""),
    ],
    ids=[
        "unknown member",
        "no case",
        "body not an object",
        "unknown type",
        "case without gemeente",
        "recipient twice",
        "empty recipients",
        "reply_to not a uuid",
        "an array",
        "a lone surrogate",
    ],
)
async def test_a_request_not_of_the_documented_shape_is_malformed_with_its_pointer(
    client: Client,
    examples: dict[str, dict[str, Any]],
    change: Callable[[dict[str, Any]], Any],
    pointer: str,
) -> None:
    """What the document refuses is refused before the service: 400 MALFORMED with the pointer."""
    response = await client.post(
        f"{API_PREFIX}/messages", json=change(enrichment_for_tiel(examples)), headers=AUTH
    )
    body = await documented(response, "/messages", "post")
    assert (response.status, body["code"], body["pointer"]) == (400, "MALFORMED", pointer)


async def test_a_request_over_256_kib_is_too_large(
    client: Client, examples: dict[str, dict[str, Any]]
) -> None:
    """More than 256 KiB: 413 TOO_LARGE, whether or not Content-Length says so."""
    submission = enrichment_for_tiel(examples)
    raw = json.dumps(submission).encode()
    oversized = raw[:-1] + b"," + b'"pad":"' + b"x" * (256 * 1024) + b'"}'

    response = await client.post(
        f"{API_PREFIX}/messages",
        data=oversized,
        headers=AUTH | {"Content-Type": "application/json"},
    )
    body = await documented(response, "/messages", "post")
    assert (response.status, body["code"]) == (413, "TOO_LARGE")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(oversized), 65536):
            yield oversized[start : start + 65536]

    response = await client.post(
        f"{API_PREFIX}/messages", data=chunks(), headers=AUTH | {"Content-Type": "application/json"}
    )
    body = await documented(response, "/messages", "post")
    assert (response.status, body["code"]) == (413, "TOO_LARGE")


# --- reading -------------------------------------------------------------------------


async def test_get_gives_the_status_and_the_timeline_of_evidence(
    client: Client, examples: dict[str, dict[str, Any]]
) -> None:
    """GET a message: its status, whether final, and each status with when and its evidence."""
    [first, *_] = await submitted(client, enrichment_for_tiel(examples))

    response = await client.get(f"{API_PREFIX}/messages/{first['id']}", headers=AUTH)

    view = await documented(response, "/messages/{id}", "get")
    assert response.status == 200
    assert (view["id"], view["recipient"], view["sender"]) == (
        first["id"],
        first["recipient"],
        "vt-gz",
    )
    assert (view["status"], view["final"], view["direction"]) == ("queued", False, "out")
    assert view["case"] == {"ref": "VT-2026-000123", "gemeente": TIEL}
    assert view["timeline"] == [
        {"status": "queued", "at": "2026-11-28T12:00:00.000Z", "final": False, "evidence": {}}
    ]
    assert view["answers"] == []
    assert "body" not in view


async def test_the_timeline_grows_with_the_evidence_of_each_step(
    client: Client, store: Store, examples: dict[str, dict[str, Any]]
) -> None:
    """Each status the message went through, oldest first, with when and the evidence for it."""
    [first, *_] = await submitted(client, enrichment_for_tiel(examples))
    confirm = {"broker": "confirmed", "exchange": "vtgw.out", "routing_key": first["recipient"]}
    async with store.transaction() as uow:  # what the outbox relay records on the confirm
        change = sent("enrichment.request", NOW + timedelta(seconds=1), confirm)
        await uow.messages.record("vt-gz", first["id"], change)

    response = await client.get(f"{API_PREFIX}/messages/{first['id']}", headers=AUTH)

    view = await documented(response, "/messages/{id}", "get")
    assert (view["status"], view["final"]) == ("sent", False)
    assert view["timeline"] == [
        {"status": "queued", "at": "2026-11-28T12:00:00.000Z", "final": False, "evidence": {}},
        {"status": "sent", "at": "2026-11-28T12:00:01.000Z", "final": False, "evidence": confirm},
    ]


async def test_an_unknown_message_is_not_found(client: Client) -> None:
    """An id no message of VT has: 404 NOT_FOUND."""
    response = await client.get(
        f"{API_PREFIX}/messages/00000000-0000-4000-8000-000000000000", headers=AUTH
    )
    body = await documented(response, "/messages/{id}", "get")
    assert (response.status, body["code"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    "message_id", ["not-a-uuid", "0000000A-0000-4000-8000-000000000000", "1234"]
)
async def test_a_message_id_that_is_not_a_lowercase_uuid_is_malformed(
    client: Client, message_id: str
) -> None:
    """The id in the path must be a lowercase hyphenated UUID: 400 MALFORMED otherwise."""
    response = await client.get(f"{API_PREFIX}/messages/{message_id}", headers=AUTH)
    body = await documented(response, "/messages/{id}", "get")
    assert (response.status, body["code"]) == (400, "MALFORMED")


# --- authentication ------------------------------------------------------------------


async def test_a_call_without_a_token_is_unauthenticated(
    client: Client, examples: dict[str, dict[str, Any]]
) -> None:
    """No bearer token: 401 with the Bearer challenge, and nothing is submitted."""
    response = await client.post(f"{API_PREFIX}/messages", json=enrichment_for_tiel(examples))
    body = await documented(response, "/messages", "post")
    assert (response.status, body["code"]) == (401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN[:-1]}", TOKEN],
    ids=["longer", "basic scheme", "no token", "shorter", "no scheme"],
)
async def test_a_call_with_a_wrong_token_is_unauthenticated(
    client: Client, authorization: str
) -> None:
    """A token that is not a configured caller's: 401 with the Bearer challenge."""
    response = await client.get(
        f"{API_PREFIX}/messages/00000000-0000-4000-8000-000000000000",
        headers={"Authorization": authorization},
    )
    body = await documented(response, "/messages/{id}", "get")
    assert (response.status, body["code"]) == (401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_bearer_scheme_is_case_insensitive(client: Client) -> None:
    """RFC 7235: the scheme name is case-insensitive; the token is not."""
    response = await client.get(
        f"{API_PREFIX}/messages/00000000-0000-4000-8000-000000000000",
        headers={"Authorization": f"bearer {TOKEN}"},
    )
    assert response.status == 404


# --- the document ----------------------------------------------------------------------


def references(node: Any) -> Iterator[str]:
    """Every `$ref` of a document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def app_routes(api: web.Application) -> Iterator[tuple[str, str]]:
    for route in api.router.routes():
        if route.method != "HEAD" and route.resource is not None:
            yield route.resource.canonical.removeprefix(API_PREFIX), route.method.lower()


async def test_the_openapi_document_is_served_without_a_token(client: Client) -> None:
    """GET /openapi.json needs no token and names where it is mounted as its server."""
    response = await client.get(f"{API_PREFIX}/openapi.json")
    document = await documented(response, "/openapi.json", "get")
    assert response.status == 200
    assert document["servers"] == [{"url": API_PREFIX}]
    assert document["paths"] == DOCUMENT["paths"]


def test_the_openapi_document_is_valid_and_names_every_route(hub: Hub, core: Core) -> None:
    """OpenAPI 3.1: every route of the app documented, every schema valid, every $ref resolved."""
    tokens = ApiTokens.from_mapping({})
    api = create_api_app(
        store=MemoryStore(), hub=hub, region=core.region, tokens=tokens, clock=lambda: NOW
    )
    mounted(api)
    if importlib.util.find_spec("openapi_spec_validator") is not None:  # not a dependency
        importlib.import_module("openapi_spec_validator").validate(DOCUMENT)

    assert DOCUMENT["openapi"].startswith("3.1.")
    routes = set(app_routes(api))
    assert routes == {(p, m) for p, item in DOCUMENT["paths"].items() for m in item}
    for schema in DOCUMENT["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], f"{method} {path} documents no response"
            for status, reference in operation["responses"].items():
                content = _resolve(reference).get("content", {})
                media = set(content) & {"application/json", "text/csv"}  # CSV: the report only
                assert media, f"{method} {path} {status}: neither JSON nor CSV"
                schema = content[sorted(media)[0]]["schema"]
                if "$ref" in schema:
                    _resolve(schema)
    for reference in references(DOCUMENT):
        _resolve({"$ref": reference})


def test_the_documented_message_types_are_the_protocols() -> None:
    """The document's enum of message types is the envelope schema's, in the same order."""
    envelope = json.loads((data_dir("schemas") / "envelope.schema.json").read_text("utf-8"))
    documented_types = DOCUMENT["components"]["schemas"]["MessageType"]["enum"]
    assert documented_types == envelope["properties"]["type"]["enum"]


def test_the_documented_view_names_every_field_of_the_view() -> None:
    """The MessageView schema requires exactly the fields that `views.py` gives."""
    view = DOCUMENT["components"]["schemas"]["MessageView"]
    assert set(view["required"]) == set(view["properties"])
    assert set(view["required"]) == {
        "id", "type", "sender", "recipient", "thread", "reply_to", "case", "direction",
        "status", "final", "digest", "sent_at", "attempts", "timeline", "answers",
    }  # fmt: skip
    assert DOCUMENT["components"]["schemas"]["Status"]["enum"] == [s.value for s in Status]


# --- the edges: headers, logs, failures ---------------------------------------------------


async def test_every_response_carries_the_security_headers(client: Client) -> None:
    """no-store and nosniff on success, refusal and unknown routes alike."""
    calls = [
        client.get(f"{API_PREFIX}/openapi.json"),
        client.get(f"{API_PREFIX}/messages/00000000-0000-4000-8000-000000000000"),
        client.get(f"{API_PREFIX}/messages/00000000-0000-4000-8000-000000000000", headers=AUTH),
        client.get(f"{API_PREFIX}/nothing-here", headers=AUTH),
        client.put(f"{API_PREFIX}/messages", headers=AUTH),
    ]
    for call in calls:
        response = await call
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        body = await response.json()
        assert set(body) == {"code", "detail", "pointer"} or "openapi" in body


async def test_a_method_the_route_does_not_have_is_405_with_allow(client: Client) -> None:
    """PUT on /messages: 405 METHOD_NOT_ALLOWED in the error shape, with the Allow header."""
    response = await client.put(f"{API_PREFIX}/messages", headers=AUTH)
    body = await response.json()
    assert (response.status, body["code"]) == (405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]


def body_values(value: Any) -> Iterator[str]:
    """Every leaf value of a body, as text."""
    if isinstance(value, dict):
        for item in value.values():
            yield from body_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from body_values(item)
    elif isinstance(value, str) and len(value) > 2:
        yield value


async def test_the_log_of_a_submit_holds_no_value_of_the_body(
    client: Client, examples: dict[str, dict[str, Any]]
) -> None:
    """One event per call: route, caller, status, duration, ids; nothing of the body or case."""
    submission = enrichment_for_tiel(examples)
    with capture_logs() as events:
        messages = await submitted(client, submission)

    calls = [e for e in events if e["event"] == "api_call"]
    assert len(calls) == 1
    [call] = calls
    assert call["route"] == f"{API_PREFIX}/messages"
    assert (call["method"], call["caller"], call["status"]) == ("POST", CALLER, 201)
    assert call["message_ids"] == [m["id"] for m in messages]
    assert isinstance(call["duration_ms"], float)
    logged = repr(events)
    sensitive = [*body_values(submission["body"]), submission["case"]["ref"], TOKEN]
    leaked = [value for value in sensitive if value in logged]
    assert leaked == []


async def test_the_log_names_the_route_template_not_the_path_or_the_query(
    client: Client,
) -> None:
    """GET with a query: the log has the template with {id}, never the query's value; a query
    parameter the route does not document is refused (MALFORMED)."""
    message_id = "00000000-0000-4000-8000-000000000000"
    with capture_logs() as events:
        await client.get(f"{API_PREFIX}/messages/{message_id}?bsn=111222333", headers=AUTH)
    [call] = [e for e in events if e["event"] == "api_call"]
    assert call["route"] == f"{API_PREFIX}/messages/{{id}}"
    assert (call["status"], call["error_code"]) == (400, "MALFORMED")
    assert "111222333" not in repr(events)


class FailingStore:
    """A store whose transactions fail as told, with personal data in the message."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def transaction(self) -> Any:
        raise self.error

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    "failure",
    [
        (RuntimeError("bsn 111222333 broke it"), 500, "INTERNAL"),
        (TransientError("database at 10.0.0.1 away for bsn 111222333"), 503, "UNAVAILABLE"),
    ],
    ids=["unexpected", "transient"],
)
async def test_a_failure_is_answered_without_its_detail(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    hub: Hub,
    core: Core,
    failure: tuple[Exception, int, str],
) -> None:
    """An unexpected failure: 500 INTERNAL (503 when passing), no detail out, none in the log."""
    error, status, code = failure
    tokens = ApiTokens.from_mapping({CALLER: hash_token(TOKEN)})
    store: Any = FailingStore(error)
    api = create_api_app(store=store, hub=hub, region=core.region, tokens=tokens, clock=lambda: NOW)
    client = await aiohttp_client(mounted(api))

    with capture_logs() as events:
        response = await client.get(
            f"{API_PREFIX}/messages/00000000-0000-4000-8000-000000000000", headers=AUTH
        )

    body = await documented(response, "/messages/{id}", "get")
    assert (response.status, body["code"]) == (status, code)
    assert "111222333" not in json.dumps(body)
    assert "111222333" not in repr(events)
    [call] = [e for e in events if e["event"] == "api_call"]
    assert call["failure"].startswith(type(error).__name__)
    assert call["log_level"] == "error"


# --- escalations (§8.6, annex 4) ------------------------------------------------------


async def escalation_in(store: Store) -> int:
    async with store.transaction() as uow:
        return await uow.escalations.add(
            propose("VT-2026-000123", "lt-tiel", EscalationReason.CONFIRMATION_OVERDUE, NOW)
        )


async def test_open_escalations_are_listed_with_their_route(client: Client, store: Store) -> None:
    """GET /escalations lists an open escalation at route a, documented."""
    number = await escalation_in(store)
    response = await client.get(f"{API_PREFIX}/escalations", headers=AUTH)
    body = await documented(response, "/escalations", "get")
    assert [(e["number"], e["route"], e["state"]) for e in body["open"]] == [(number, "a", "open")]


async def test_staff_record_outcomes_route_by_route_until_the_escalation_ends(
    client: Client, store: Store
) -> None:
    """Outcome II moves a to b to c; II at c ends it unsolved; another outcome is a 409."""
    number = await escalation_in(store)
    path = f"{API_PREFIX}/escalations/{number}/outcome"
    routes = []
    for _ in range(3):
        response = await client.post(
            path, json={"outcome": "II", "by": "teamleider VT"}, headers=AUTH
        )
        body = await documented(response, "/escalations/{number}/outcome", "post")
        routes.append((body["route"], body["state"]))
    assert routes == [("b", "open"), ("c", "open"), ("c", "unsolved")]
    response = await client.post(path, json={"outcome": "I", "by": "directeur VT"}, headers=AUTH)
    body = await documented(response, "/escalations/{number}/outcome", "post")
    assert (response.status, body["code"]) == (409, "INVALID_STATE")


async def test_an_unknown_escalation_or_a_wrong_outcome_is_refused(client: Client) -> None:
    """404 for a number nobody has; 400 for an outcome other than I or II."""
    response = await client.post(
        f"{API_PREFIX}/escalations/99/outcome", json={"outcome": "I", "by": "x"}, headers=AUTH
    )
    assert response.status == 404
    response = await client.post(
        f"{API_PREFIX}/escalations/1/outcome", json={"outcome": "III", "by": "x"}, headers=AUTH
    )
    body = await documented(response, "/escalations/{number}/outcome", "post")
    assert (response.status, body["code"]) == (400, "MALFORMED")


# --- the quarterly report (§7.2) --------------------------------------------------------


async def test_the_quarterly_report_counts_a_handover_and_comes_as_csv_too(
    client: Client, examples: dict[str, dict[str, Any]]
) -> None:
    """GET /reports/{quarter}: one row per municipality; the same rows as CSV."""
    notice = examples["overdracht.notice"]
    await submitted(client, request_of(notice))
    quarter = f"{NOW.year}Q{(NOW.month - 1) // 3 + 1}"
    response = await client.get(f"{API_PREFIX}/reports/{quarter}", headers=AUTH)
    body = await documented(response, "/reports/{quarter}", "get")
    rows = {row["gemeente"]: row for row in body["rows"]}
    assert len(rows) == 15
    assert rows[notice["case"]["gemeente"]][f"overdrachten_{notice['body']['moment'].lower()}"] == 1
    response = await client.get(f"{API_PREFIX}/reports/{quarter}/csv", headers=AUTH)
    assert response.status == 200
    lines = (await response.text()).splitlines()
    assert lines[0].startswith("gemeente,naam,overdrachten_a")
    assert len(lines) == 16
    response = await client.get(f"{API_PREFIX}/reports/2026Q5", headers=AUTH)
    assert response.status == 400


# --- VT closes a case it holds ----------------------------------------------------------


async def test_vt_closes_a_case_after_the_assessment_and_its_own_term_stops(
    client: Client, store: Store, examples: dict[str, dict[str, Any]]
) -> None:
    """No follow-up after the veiligheidsbeoordeling: POST /cases/{ref}/close writes
    `afgesloten` in the ledger (nobody holds the case), cancels the assessment's timers;
    closing again is INVALID_STATE, an unknown case NOT_FOUND, a wrong reason MALFORMED."""
    request = examples["enrichment.request"]
    ref = request["case"]["ref"]
    await submitted(client, request_of(request))
    async with store.transaction() as uow:
        assert await uow.timers.pending("vt-gz", f"veiligheidsbeoordeling:{ref}")
    close = {"by": "medewerker triage", "reason": "geen_vervolg_na_veiligheidsbeoordeling"}
    response = await client.post(f"{API_PREFIX}/cases/{ref}/close", json=close, headers=AUTH)
    body = await documented(response, "/cases/{ref}/close", "post")
    assert (response.status, body["case_ref"], body["reason"]) == (200, ref, close["reason"])
    async with store.transaction() as uow:
        assert await uow.timers.pending("vt-gz", f"veiligheidsbeoordeling:{ref}") == []
        last = await uow.ledger.last_of(ref)
    assert last is not None
    assert (last.kind.value, last.holder, last.evidence["reason"]) == (
        "afgesloten",
        None,
        close["reason"],
    )
    response = await client.post(f"{API_PREFIX}/cases/{ref}/close", json=close, headers=AUTH)
    body = await documented(response, "/cases/{ref}/close", "post")
    assert (response.status, body["code"]) == (409, "INVALID_STATE")
    response = await client.post(
        f"{API_PREFIX}/cases/VT-2026-999999/close", json=close, headers=AUTH
    )
    assert response.status == 404
    response = await client.post(
        f"{API_PREFIX}/cases/{ref}/close", json={**close, "reason": "zomaar"}, headers=AUTH
    )
    body = await documented(response, "/cases/{ref}/close", "post")
    assert (response.status, body["code"]) == (400, "MALFORMED")


async def test_a_case_with_an_open_handover_is_not_closed(
    client: Client, examples: dict[str, dict[str, Any]]
) -> None:
    """The handover runs: VT withdraws it before closing (INVALID_STATE)."""
    notice = examples["overdracht.notice"]
    await submitted(client, request_of(notice))
    response = await client.post(
        f"{API_PREFIX}/cases/{notice['case']['ref']}/close",
        json={"by": "teamleider VT", "reason": "andere_reden"},
        headers=AUTH,
    )
    body = await documented(response, "/cases/{ref}/close", "post")
    assert (response.status, body["code"]) == (409, "INVALID_STATE")


async def test_the_overdue_list_is_limited_earliest_first_and_a_wrong_limit_is_malformed(
    client: Client, store: Store, examples: dict[str, dict[str, Any]]
) -> None:
    """GET /overdue?limit=N: at most N handovers VT holds past their term, earliest first;
    a limit outside 1..1000 is MALFORMED."""
    notice = examples["overdracht.notice"]
    for day, ref in (("2026-11-02", "VT-2026-000501"), ("2026-11-03", "VT-2026-000502")):
        body = {**notice["body"], "geadviseerde_termijn": {"uiterlijk": day}}
        case = {**notice["case"], "ref": ref}
        await submitted(client, {**request_of(notice), "case": case, "body": body})
    response = await client.get(f"{API_PREFIX}/overdue?limit=1", headers=AUTH)
    body = await documented(response, "/overdue", "get")
    assert [h["case_ref"] for h in body["handovers"]] == ["VT-2026-000501"]
    response = await client.get(f"{API_PREFIX}/overdue", headers=AUTH)
    body = await documented(response, "/overdue", "get")
    assert [h["case_ref"] for h in body["handovers"]] == ["VT-2026-000501", "VT-2026-000502"]
    for wrong in ("0", "1001", "x", "²"):
        response = await client.get(f"{API_PREFIX}/overdue?limit={wrong}", headers=AUTH)
        body = await documented(response, "/overdue", "get")
        assert (response.status, body["code"]) == (400, "MALFORMED")
