"""VT's API: the case system submits messages and reads their status and evidence.

A sub-application, mounted by whoever runs the gateway:

    api = create_api_app(store=store, hub=hub, region=region, tokens=tokens, clock=clock)
    app.add_subapp(API_PREFIX, api)

Its contract is `openapi.json` beside this module, served at `/openapi.json`
(the one call without a token). The request's shape is checked against that
same document, so the two cannot drift apart: what the document refuses is a
400 `MALFORMED` with the pointer into the request; a shape it accepts goes to
the service, whose refusals (a body that fails its type's schema, a contract
that forbids it) are a 422 with the protocol's code and pointer.

Every call is one log event (method, route template, caller, status,
duration, message ids), never a body, a query value or a raw path.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, Final

import structlog
from aiohttp import hdrs, web
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from adapters.http.auth import ApiTokens, bearer_token
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.envelope import CaseRef, format_timestamp, parse_timestamp
from gateway.domain.errors import ErrorCode, PermanentError, Rejection, TransientError
from gateway.domain.escalation import Outcome
from gateway.domain.formats import is_utc_millis
from gateway.domain.region import Region
from gateway.domain.report import Quarter
from gateway.service import closing, escalations, reporting
from gateway.service.outgoing import Hub
from gateway.service.pipeline import MAX_MESSAGE_BYTES, decode
from gateway.service.ports import Store
from gateway.service.submission import SubmitMessage, submit
from gateway.service.validation import json_pointer
from gateway.service.views import case_view, held_past_deadline, message_view, overdue_terms

API_PREFIX: Final = "/api/v1"
"""Where the gateway mounts this API; the document's `servers` says so too."""

MESSAGE_ROUTE: Final = "message"
OPENAPI_ROUTE: Final = "openapi"
PUBLIC_ROUTES: Final = frozenset({OPENAPI_ROUTE})

SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

_CHALLENGE = 'Bearer realm="vt-gateway"'
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CASE_REF = re.compile(r"VT-[0-9]{4}-[0-9]{6}")
_DOCUMENT_URI = "urn:vtgw:api:openapi.json"
_READ_CHUNK = 64 * 1024
_MAX_NUMBER: Final = 2**63 - 1  # an escalation's number: the store's BIGINT key
_REPORT_YEARS: Final = (2000, 2999)  # the document's pattern of a quarter says the same

log = structlog.get_logger("vtgw.api")

Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- errors -------------------------------------------------------------------


class ApiError(Exception):
    """A refusal to answer with the protocol's error shape: status, code, detail, pointer."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        pointer: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.detail = detail
        self.pointer = pointer
        self.headers = dict(headers or {})

    @classmethod
    def rejected(cls, status: int, rejection: Rejection) -> ApiError:
        body = rejection.as_body()  # one line, at most 300 characters, a printable pointer
        return cls(status, body["code"], body["detail"], body["pointer"])

    def response(self) -> web.Response:
        body = {"code": self.code, "detail": self.detail, "pointer": self.pointer}
        return web.json_response(body, status=self.status, headers=self.headers)


_HTTP_CODES: Final[Mapping[int, str]] = {
    400: ErrorCode.MALFORMED.value,
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: ErrorCode.TOO_LARGE.value,
}


# --- the application ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What the handlers work with; built once per application."""

    store: Store
    hub: Hub
    region: Region
    tokens: ApiTokens
    clock: Clock
    shape: RequestShape
    outcome_shape: RequestShape
    close_shape: RequestShape
    document: Mapping[str, Any]


CONTEXT: Final = web.AppKey("vtgw_api", ApiContext)
CALLER: Final = web.RequestKey("vtgw_api_caller", str)
MESSAGE_IDS: Final[web.RequestKey[tuple[str, ...]]] = web.RequestKey("vtgw_api_message_ids")
ERROR_CODE: Final = web.RequestKey("vtgw_api_error_code", str)
FAILURE: Final = web.RequestKey("vtgw_api_failure", str)


def create_api_app(
    *, store: Store, hub: Hub, region: Region, tokens: ApiTokens, clock: Clock
) -> web.Application:
    """VT's API as a sub-application: mount it with `app.add_subapp(API_PREFIX, api)`.

    The store is the caller's: opened in the running loop (an async app
    factory or a `cleanup_ctx` of its own) and closed by it, never here.
    """
    document = load_openapi()
    app = web.Application(
        middlewares=[
            access_log,
            security_headers,
            error_responses,
            bearer_authentication,
            documented_query,
        ]
    )
    app[CONTEXT] = ApiContext(
        store=store,
        hub=hub,
        region=region,
        tokens=tokens,
        clock=clock,
        shape=RequestShape(document, "SubmitRequest"),
        outcome_shape=RequestShape(document, "OutcomeRequest"),
        close_shape=RequestShape(document, "CloseRequest"),
        document=document,
    )
    app.router.add_post("/messages", submit_message, name="messages")
    app.router.add_get("/messages/{id}", get_message, name=MESSAGE_ROUTE)
    app.router.add_get("/cases/{ref}", get_case, name="case")
    app.router.add_get("/overdue", get_overdue, name="overdue")
    app.router.add_get("/escalations", get_escalations, name="escalations")
    app.router.add_get("/reports/{quarter}", get_report, name="report")
    app.router.add_get("/reports/{quarter}/csv", get_report_csv, name="report_csv")
    app.router.add_post(
        "/escalations/{number}/outcome", post_escalation_outcome, name="escalation_outcome"
    )
    app.router.add_post("/cases/{ref}/close", post_close_case, name="case_close")
    app.router.add_get("/openapi.json", get_openapi, name=OPENAPI_ROUTE)
    return app


def load_openapi() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document, from the package."""
    text = (
        resources.files(__package__ or "adapters.http")
        .joinpath("openapi.json")
        .read_text(encoding="utf-8")
    )
    document: dict[str, Any] = json.loads(text)
    return document


class RequestShape:
    """A request body checked against a schema of the OpenAPI document, compiled once."""

    def __init__(self, document: Mapping[str, Any], schema: str) -> None:
        registry: Registry[Any] = Registry().with_resource(
            _DOCUMENT_URI, DRAFT202012.create_resource(dict(document))
        )
        self._validator = Draft202012Validator(
            {"$ref": f"{_DOCUMENT_URI}#/components/schemas/{schema}"}, registry=registry
        )

    def check(self, instance: Any) -> None:
        """Raise a 400 `MALFORMED` naming the first failing place; nothing of the value."""
        error = best_match(self._validator.iter_errors(instance))
        if error is not None:
            raise ApiError(
                400, ErrorCode.MALFORMED.value, _shape_detail(error), json_pointer(error.path)
            )


def _shape_detail(error: ValidationError) -> str:
    """What failed, from the schema's side only: never a value of the request."""
    keyword = str(error.validator)
    required = error.validator_value
    if keyword == "required" and isinstance(required, list) and isinstance(error.instance, dict):
        missing = [name for name in required if name not in error.instance]
        if missing:
            return f"misses required member '{missing[0]}'"
    if keyword == "additionalProperties":
        return "has a member the API does not name"
    if keyword == "type":
        return f"must be of JSON type {error.validator_value}"
    if keyword == "uniqueItems":
        return "names the same recipient twice"
    return f"fails schema keyword '{keyword}'"


# --- handlers -------------------------------------------------------------------


async def submit_message(request: web.Request) -> web.Response:
    """Route, sign, store and queue a message of VT's case system; its ids."""
    api = request.app[CONTEXT]
    raw = await _read_body(request)
    obj = _decoded(raw)
    api.shape.check(obj)
    command = SubmitMessage(
        type=obj["type"],
        case=CaseRef(obj["case"]["ref"], obj["case"]["gemeente"]),
        body=obj["body"],
        recipients=tuple(obj.get("recipients", ())),
        reply_to=obj.get("reply_to"),
    )
    try:
        stored = await submit(api.store, api.hub, api.region, command, api.clock())
    except PermanentError as error:
        raise ApiError.rejected(422, error.rejection) from error
    if not stored:  # a routing rule that gives nobody: nothing was stored
        raise ApiError(
            422, ErrorCode.UNKNOWN_RECIPIENT.value, "no recipient for this message", "/recipients"
        )
    request[MESSAGE_IDS] = tuple(m.id for m in stored)
    location = request.app.router[MESSAGE_ROUTE].url_for(id=stored[0].id)
    return web.json_response(
        {"messages": [{"id": m.id, "recipient": m.recipient} for m in stored]},
        status=201,
        headers={hdrs.LOCATION: str(location)},
    )


async def get_message(request: web.Request) -> web.Response:
    """A message VT sent or received: its status, timeline of evidence and answers."""
    api = request.app[CONTEXT]
    message_id = request.match_info["id"]
    if not _UUID.fullmatch(message_id):
        raise ApiError(
            400, ErrorCode.MALFORMED.value, "the message id must be a lowercase hyphenated UUID"
        )
    view = await message_view(api.store, message_id, api.hub.party)
    if view is None:
        raise ApiError(404, "NOT_FOUND", "no message with this id")
    request[MESSAGE_IDS] = (message_id,)
    return web.json_response(view.as_json())


async def get_case(request: web.Request) -> web.Response:
    """Who holds a case now (or at `?at=`), its ledger and its overdrachten."""
    api = request.app[CONTEXT]
    case_ref = request.match_info["ref"]
    if not _CASE_REF.fullmatch(case_ref):
        raise ApiError(400, ErrorCode.MALFORMED.value, "the case reference is VT-YYYY-NNNNNN")
    at_text = request.query.get("at")
    at = None
    if at_text is not None:
        if not is_utc_millis(at_text):
            raise ApiError(400, ErrorCode.MALFORMED.value, "at is RFC 3339 UTC with milliseconds")
        at = parse_timestamp(at_text)
    view = await case_view(api.store, case_ref, at)
    if view is None:
        raise ApiError(404, "NOT_FOUND", "no case with this reference")
    return web.json_response(view)


OVERDUE_DEFAULT = 100
OVERDUE_MAX = 1000


async def get_overdue(request: web.Request) -> web.Response:
    """The handovers VT still holds past their confirmation deadline, earliest first;
    and VT's own terms that ended before it decided what follows."""
    api = request.app[CONTEXT]
    now = api.clock()
    calendar = WorkingDayCalendar.for_region(api.region)
    limit_text = request.query.get("limit", str(OVERDUE_DEFAULT))
    if not (limit_text.isascii() and limit_text.isdigit()) or not (
        1 <= int(limit_text) <= OVERDUE_MAX
    ):
        raise ApiError(
            400, ErrorCode.MALFORMED.value, f"limit is a whole number from 1 to {OVERDUE_MAX}"
        )
    late = await held_past_deadline(api.store, calendar, now, api.hub.party, limit=int(limit_text))
    terms = await overdue_terms(api.store)
    return web.json_response({"at": format_timestamp(now), "handovers": late, "terms": terms})


async def get_escalations(request: web.Request) -> web.Response:
    """The open escalations and the parties flagged as a structural problem (annex 4 §5)."""
    api = request.app[CONTEXT]
    return web.json_response(await escalations.overview(api.store, api.clock()))


async def post_escalation_outcome(request: web.Request) -> web.Response:
    """VT staff record a route's outcome: I solved, II not solved (the next route)."""
    api = request.app[CONTEXT]
    number_text = request.match_info["number"]
    # ASCII digits only ("²".isdigit() is True, int("²") a ValueError), and within the
    # store's 64-bit key, as the document's maximum says
    if not (number_text.isascii() and number_text.isdigit()) or not (
        1 <= int(number_text) <= _MAX_NUMBER
    ):
        raise ApiError(
            400, ErrorCode.MALFORMED.value, "the escalation number is a positive integer"
        )
    obj = _decoded(await _read_body(request))
    api.outcome_shape.check(obj)
    try:
        updated = await escalations.record(
            api.store,
            int(number_text),
            Outcome(obj["outcome"]),
            by=obj["by"],
            note=obj.get("note", ""),
            at=api.clock(),
        )
    except PermanentError as error:
        if error.code is ErrorCode.UNKNOWN_THREAD:
            raise ApiError(404, "NOT_FOUND", "no escalation with this number") from error
        raise ApiError.rejected(409, error.rejection) from error
    return web.json_response(updated)


async def post_close_case(request: web.Request) -> web.Response:
    """VT closes a case it holds without a handover; its own terms for the case stop."""
    api = request.app[CONTEXT]
    obj = _decoded(await _read_body(request))
    api.close_shape.check(obj)
    try:
        closed = await closing.close_case(
            api.store,
            request.match_info["ref"],
            vt=api.hub.party,
            by=obj["by"],
            reason=obj["reason"],
            at=api.clock(),
        )
    except PermanentError as error:
        if error.code is ErrorCode.UNKNOWN_THREAD:
            raise ApiError(404, "NOT_FOUND", "the ledger has no such case") from error
        raise ApiError.rejected(409, error.rejection) from error
    return web.json_response(closed)


async def _report(request: web.Request) -> dict[str, Any]:
    api = request.app[CONTEXT]
    try:
        quarter = Quarter.parse(request.match_info["quarter"])
    except ValueError as error:
        raise ApiError(
            400, ErrorCode.MALFORMED.value, "a quarter is written like 2026Q3"
        ) from error
    if not _REPORT_YEARS[0] <= quarter.year <= _REPORT_YEARS[1]:  # year 0 has no calendar
        raise ApiError(400, ErrorCode.MALFORMED.value, "a report's year lies in 2000 to 2999")
    calendar = WorkingDayCalendar.for_region(api.region)
    return await reporting.report(api.store, api.region, calendar, quarter)


async def get_report(request: web.Request) -> web.Response:
    """The quarterly report per municipality (§7.2), as JSON."""
    return web.json_response(await _report(request))


async def get_report_csv(request: web.Request) -> web.Response:
    """The same report as CSV, one row per municipality."""
    document = await _report(request)
    return web.Response(
        text=reporting.as_csv(document),
        content_type="text/csv",
        headers={
            hdrs.CONTENT_DISPOSITION: f'attachment; filename="report-{document["quarter"]}.csv"'
        },
    )


async def get_openapi(request: web.Request) -> web.Response:
    """The OpenAPI document, its server being where this application is mounted."""
    api = request.app[CONTEXT]
    here = str(request.app.router[OPENAPI_ROUTE].url_for())
    prefix = here.removesuffix("/openapi.json") or "/"
    return web.json_response(dict(api.document) | {"servers": [{"url": prefix}]})


def _decoded(raw: bytes) -> dict[str, Any]:
    """The body as the protocol decodes a message: an I-JSON object, integers only, 32 deep."""
    try:
        obj = decode(raw)
    except PermanentError as error:
        status = 413 if error.code is ErrorCode.TOO_LARGE else 400
        raise ApiError.rejected(status, error.rejection) from error
    try:  # `"\ud800"` is valid JSON but no Unicode text: I-JSON (RFC 7493) forbids it
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise ApiError(
            400, ErrorCode.MALFORMED.value, "request body is not I-JSON: a lone surrogate"
        ) from error
    return obj


async def _read_body(request: web.Request) -> bytes:
    """The request body, refused with 413 as soon as it passes 256 KiB."""
    too_large = ApiError(
        413, ErrorCode.TOO_LARGE.value, f"the request body is over {MAX_MESSAGE_BYTES} bytes"
    )
    if request.content_length is not None and request.content_length > MAX_MESSAGE_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > MAX_MESSAGE_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


# --- middlewares, outermost first -------------------------------------------------


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One event per call: who called which route, the outcome, the ids; no body, no query."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer (nginx's code for it)
        raise
    else:
        status = response.status
        return response
    finally:
        fields: dict[str, Any] = {
            "method": request.method,
            "route": _route_template(request),
            "caller": request.get(CALLER),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if MESSAGE_IDS in request:
            ids: tuple[str, ...] = request[MESSAGE_IDS]
            fields["message_ids"] = list(ids)
        if ERROR_CODE in request:
            fields["error_code"] = request[ERROR_CODE]
        if FAILURE in request:
            fields["failure"] = request[FAILURE]
        if status >= 500:
            log.error("api_call", **fields)
        else:
            log.info("api_call", **fields)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No caching, no content sniffing, nothing to frame or load: on every response."""
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def error_responses(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal and failure as `{code, detail, pointer}`; a failure tells nothing more."""
    try:
        return await handler(request)
    except ApiError as error:
        request[ERROR_CODE] = error.code
        return error.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "INTERNAL" if exc.status >= 500 else "MALFORMED")
        request[ERROR_CODE] = code
        headers = {str(name): exc.headers[name] for name in (hdrs.ALLOW,) if name in exc.headers}
        return ApiError(exc.status, code, exc.reason or code, "", headers).response()
    except TransientError as exc:
        request[ERROR_CODE] = "UNAVAILABLE"
        request[FAILURE] = _failure(exc)
        return ApiError(
            503, "UNAVAILABLE", "the gateway cannot reach its store; try again"
        ).response()
    except Exception as exc:
        request[ERROR_CODE] = "INTERNAL"
        request[FAILURE] = _failure(exc)
        return ApiError(500, "INTERNAL", "internal error").response()


@web.middleware
async def bearer_authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route but the public ones needs the bearer token of a configured caller."""
    match_info = request.match_info
    if match_info.http_exception is not None or match_info.route.name in PUBLIC_ROUTES:
        return await handler(request)
    presented = bearer_token(request.headers.get(hdrs.AUTHORIZATION))
    caller = request.app[CONTEXT].tokens.authenticate(presented)
    if caller is None:
        challenge = _CHALLENGE if presented is None else f'{_CHALLENGE}, error="invalid_token"'
        raise ApiError(
            401,
            "UNAUTHENTICATED",
            "a bearer token of a configured calling system is required",
            headers={hdrs.WWW_AUTHENTICATE: challenge},
        )
    request[CALLER] = caller
    return await handler(request)


@web.middleware
async def documented_query(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A query parameter the route's operation does not document is MALFORMED: a caller's
    typo (`?limt=`) must not pass silently for the default."""
    route = request.match_info.route
    if route.resource is not None and request.query:
        api = request.app[CONTEXT]
        path = route.resource.canonical.removeprefix(_api_prefix(request))
        operation = api.document["paths"].get(path, {}).get(request.method.lower(), {})
        allowed = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
        unknown = sorted(set(request.query) - allowed)
        if unknown:
            raise ApiError(
                400,
                ErrorCode.MALFORMED.value,
                "query parameters this route does not know: " + ", ".join(unknown)[:200],
            )
    return await handler(request)


def _api_prefix(request: web.Request) -> str:
    """Where the API is mounted (`/api/v1`), so a route's template matches the document's."""
    here = str(request.app.router[OPENAPI_ROUTE].url_for())
    return here.removesuffix("/openapi.json")


def _route_template(request: web.Request) -> str:
    """The route as registered (`/api/v1/messages/{id}`), never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(unmatched)"


def _failure(exc: BaseException) -> str:
    """The exception's class and where it was raised; never its message (it may echo data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"
