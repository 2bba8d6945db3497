"""The local HTTP endpoint where the partner's system hands in its answers.

Bound to 127.0.0.1 by default: it signs with the partner's key whatever it is
given, so only the partner's own system may reach it.

- `POST /answers` with `{"type", "reply_to", "body"}` (JSON, integers only):
  202 `{"id", "status", "thread", "sent_at"}` once the answer is signed and
  stored (status `sent` when the broker confirmed it already, `queued` when
  it will be tried again shortly). Refusals carry the protocol's error body
  `{"code", "detail", "pointer"}`: 400 not I-JSON, 404 `reply_to` names no
  message from VT (UNKNOWN_THREAD), 409 the answer does not fit the thread
  (INVALID_STATE) or the idempotency key was used for another request
  (DUPLICATE_CONFLICT), 422 the schema or the contract refuses it (the
  pointer is into the posted object: `/body/...`). An optional
  `Idempotency-Key` header makes a repeated request return the same answer.
- `GET /answers/{id}`: where an answer stands (queued, sent, delivered,
  refused, undeliverable) and how many attempts it took.
- `GET /healthz`: 200 while the adapter runs.
"""

from __future__ import annotations

import hashlib
from typing import Final

from aiohttp import web

from adapters.amqp.partner.answers import AnswerSender
from adapters.amqp.partner.ledger import Answer
from adapters.amqp.partner.messages import parse_answer_request
from gateway.domain.envelope import format_timestamp
from gateway.domain.errors import ErrorCode, PermanentError, TransientError
from gateway.service.pipeline import MAX_MESSAGE_BYTES

SENDER_KEY: Final = web.AppKey("answer_sender", AnswerSender)

_STATUS: Final = {
    ErrorCode.MALFORMED: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNKNOWN_THREAD: 404,
    ErrorCode.INVALID_STATE: 409,
    ErrorCode.DUPLICATE_CONFLICT: 409,
}


def answers_app(sender: AnswerSender) -> web.Application:
    """The aiohttp application of the answers endpoint."""
    app = web.Application(client_max_size=MAX_MESSAGE_BYTES)
    app[SENDER_KEY] = sender
    app.router.add_post("/answers", post_answer)
    app.router.add_get("/answers/{id}", get_answer)
    app.router.add_get("/healthz", healthz)
    return app


async def post_answer(request: web.Request) -> web.Response:
    sender = request.app[SENDER_KEY]
    raw = await request.read()
    key = request.headers.get("Idempotency-Key")
    try:
        answer_request = parse_answer_request(raw)
        answer = await sender.send(
            answer_request,
            source=None if key is None else f"http:{key}",
            source_hash=hashlib.sha256(raw).hexdigest(),
        )
    except PermanentError as exc:
        return web.json_response(exc.rejection.as_body(), status=_STATUS.get(exc.code, 422))
    except TransientError as exc:
        return web.json_response(
            {"code": "UNAVAILABLE", "detail": str(exc).splitlines()[0][:300], "pointer": ""},
            status=503,
        )
    return web.json_response(_view(answer), status=202)


async def get_answer(request: web.Request) -> web.Response:
    answer = await request.app[SENDER_KEY].status(request.match_info["id"])
    if answer is None:
        return web.json_response(
            {"code": "NOT_FOUND", "detail": "no answer with this id", "pointer": ""}, status=404
        )
    return web.json_response(_view(answer))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _view(answer: Answer) -> dict[str, object]:
    return {
        "id": answer.id,
        "type": answer.type,
        "reply_to": answer.reply_to,
        "thread": answer.thread,
        "sent_at": format_timestamp(answer.sent_at),
        "status": answer.status.value,
        "attempts": answer.attempts,
        "outcome_id": answer.outcome_id,
        "outcome_code": answer.outcome_code,
    }
