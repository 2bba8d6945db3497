"""Which answers a thread admits (PROTOCOL.md, catalogue "answers" column; §8.5 C, D).

The first rules of the handover's lifecycle: an answer must answer the type
it is for; a handover is confirmed once; nothing answers a withdrawn
handover. The full lifecycle (deadlines, ledger) builds on these.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.domain.errors import ErrorCode, Rejection

ANSWERS: dict[str, frozenset[str]] = {
    "enrichment.response": frozenset({"enrichment.request"}),
    "overdracht.confirmation": frozenset({"overdracht.notice"}),
    "overdracht.deferral": frozenset({"overdracht.notice"}),
    "overdracht.question": frozenset({"overdracht.notice", "overdracht.answer"}),
    "monitoring.response": frozenset({"monitoring.request"}),
}

_HANDOVER_ANSWERS = frozenset({"overdracht.confirmation", "overdracht.deferral"})


def answer_problem(
    answer_type: str, answered_type: str, thread_types: Sequence[str]
) -> Rejection | None:
    """Why this answer does not fit its thread, or None when it does.

    `thread_types` are the types of the messages already in the thread.
    Receipts and errors answer anything.
    """
    allowed = ANSWERS.get(answer_type)
    if allowed is not None and answered_type not in allowed:
        return Rejection(
            ErrorCode.INVALID_STATE, f"{answer_type} does not answer {answered_type}", "/reply_to"
        )
    if answer_type in _HANDOVER_ANSWERS:
        if "overdracht.withdrawal" in thread_types:
            return Rejection(ErrorCode.INVALID_STATE, "the handover was withdrawn by VT", "/type")
        if "overdracht.confirmation" in thread_types:
            return Rejection(ErrorCode.INVALID_STATE, "the handover is already confirmed", "/type")
    return None
