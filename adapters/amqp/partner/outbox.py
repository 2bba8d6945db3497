"""The outbox folder: answers the partner's system leaves as files.

Each `*.json` file in the folder holds one `{"type", "reply_to", "body"}`.
The partner's system must write it atomically: under a name starting with a
dot or not ending in `.json`, renamed when complete (a half-written file
would be refused as MALFORMED). Each sweep takes the files in name order:

- sent (signed, stored, published or queued for a retry): moved to
  `sent/<stem>.<message id>.json`;
- refused (schema, contract, thread): moved to `failed/<name>` with
  `failed/<stem>.reason.json` = `{"code", "detail", "pointer"}`;
- not now (the ledger unavailable): left in place for the next sweep.

A file picked up twice (a crash between storing its answer and moving it) is
one answer: the ledger knows the file by its name and the hash of its bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import structlog

from adapters.amqp.partner.answers import AnswerSender
from adapters.amqp.partner.handoff import fsync_directory, write_atomically
from adapters.amqp.partner.messages import parse_answer_request
from gateway.domain.errors import PermanentError, Rejection, TransientError

log = structlog.get_logger("vtgw.partner.outbox")


class OutboxFolder:
    """Sweeps a folder of answer files into the `AnswerSender`."""

    def __init__(self, directory: Path, sender: AnswerSender) -> None:
        self.directory = directory
        self.sent = directory / "sent"
        self.failed = directory / "failed"
        self._sender = sender

    async def start(self) -> None:
        for folder in (self.directory, self.sent, self.failed):
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)

    async def sweep(self) -> int:
        """Take every answer file lying in the folder now; how many were taken."""
        paths = await asyncio.to_thread(_answer_files, self.directory)
        taken = 0
        for path in paths:
            if await self._take(path):
                taken += 1
        return taken

    async def _take(self, path: Path) -> bool:
        try:
            raw = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:  # gone meanwhile, or not readable: the next sweep sees
            log.warning("outbox_file_unreadable", file=path.name, error=str(exc))
            return False
        sha = hashlib.sha256(raw).hexdigest()
        try:
            request = parse_answer_request(raw)
            answer = await self._sender.send(
                request, source=f"outbox:{path.name}:{sha}", source_hash=sha
            )
        except PermanentError as exc:
            await asyncio.to_thread(self._fail, path, exc.rejection)
            log.warning(
                "outbox_file_refused",
                file=path.name,
                code=exc.code.value,
                pointer=exc.rejection.pointer,
            )
            return True
        except TransientError as exc:
            log.warning("outbox_file_postponed", file=path.name, error=str(exc))
            return False
        await asyncio.to_thread(_move, path, self.sent / f"{path.stem}.{answer.id}.json")
        log.info("outbox_file_sent", file=path.name, message_id=answer.id, type=answer.type)
        return True

    def _fail(self, path: Path, rejection: Rejection) -> None:
        reason = json.dumps(rejection.as_body(), ensure_ascii=False, indent=2).encode() + b"\n"
        write_atomically(self.failed / f"{path.stem}.reason.json", reason)
        _move(path, self.failed / path.name)


def _answer_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.json") if not p.name.startswith(".") and p.is_file())


def _move(source: Path, target: Path) -> None:
    os.replace(source, target)
    fsync_directory(target.parent)
    fsync_directory(source.parent)
