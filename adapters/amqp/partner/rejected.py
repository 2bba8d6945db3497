"""Rejected messages are kept, never lost (PROTOCOL.md: "Rejecting never loses the message").

Each refused message lies in the `rejected/` folder as two files named after
its id (or `unidentified`) and the start of the SHA-256 of its bytes:

- `<name>.raw`: exactly the bytes received (they may not even be JSON);
- `<name>.json`: why: code, detail, pointer, ids, when, and the id of the
  `error` we sent back (or null when none may be sent: a refused receipt or
  error, or a message without a readable id).

The same bytes again land on the same name: kept once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from adapters.amqp.partner.handoff import write_atomically
from gateway.domain.envelope import format_timestamp
from gateway.domain.errors import Rejection, TransientError


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """A refused message, and what we know about it."""

    raw: bytes
    rejection: Rejection
    message_id: str | None
    thread: str | None
    received_at: datetime
    transport_identity: str
    error_id: str | None


class RejectedFolder:
    """The folder of refused messages, each with its reason file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise TransientError(f"cannot create {self.directory}: {exc}") from exc

    async def keep(self, rejected: RejectedMessage) -> Path:
        """Write the message and its reason durably; the path of the reason file."""
        sha = hashlib.sha256(rejected.raw).hexdigest()
        name = f"{rejected.message_id or 'unidentified'}.{sha[:16]}"
        reason = {
            **rejected.rejection.as_body(),
            "message_id": rejected.message_id,
            "thread": rejected.thread,
            "received_at": format_timestamp(rejected.received_at),
            "transport_identity": rejected.transport_identity,
            "sha256": sha,
            "raw_file": f"{name}.raw",
            "error_sent": rejected.error_id,
        }
        text = json.dumps(reason, ensure_ascii=False, indent=2).encode() + b"\n"
        reason_path = self.directory / f"{name}.json"
        try:
            await asyncio.to_thread(write_atomically, self.directory / f"{name}.raw", rejected.raw)
            await asyncio.to_thread(write_atomically, reason_path, text)
        except OSError as exc:
            raise TransientError(
                f"cannot keep a rejected message in {self.directory}: {exc}"
            ) from exc
        return reason_path
