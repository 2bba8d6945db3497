"""Handing a received message over to the partner's own system: a webhook, or a folder.

A message counts as handed over only when the partner's system has it for
sure: the webhook answered 2xx, or the file is complete on disk under its
final name (written to a temporary name, fsynced, renamed, directory fsynced).
Anything else raises `HandoffError` (transient): the delivery goes back to the
queue and is handed over again later.

What is handed over is the message exactly as received and verified: the
signed envelope, so the partner's system keeps the evidence too. The same
message may be handed over twice after a crash between the handover and our
note of it (at least once): the partner's system recognises it by its id
(`X-Vtgw-Message-Id`, or the file name `<id>.json`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol
from uuid import uuid4

import aiohttp

from gateway.domain.errors import TransientError

FILE_MODE: Final = 0o640
"""Handed-over files: the adapter's user writes, its group (the partner's system) reads."""


@dataclass(frozen=True, slots=True)
class HandedMessage:
    """A verified message for the partner's system: its identity and its exact bytes."""

    id: str
    type: str
    sender: str
    thread: str
    digest: str
    raw: bytes


class HandoffError(TransientError):
    """The partner's system did not take the message; try again later."""


class Handoff(Protocol):
    """Where received messages go: the partner's own system."""

    async def start(self) -> None: ...

    async def hand_over(self, message: HandedMessage) -> None:
        """Return only when the partner's system has the message; else HandoffError."""
        ...

    async def close(self) -> None: ...


class WebhookHandoff:
    """POST each message to the partner's webhook; 2xx means it has it.

    The body is the signed envelope as received (`application/json`), with
    the headers `X-Vtgw-Message-Id`, `X-Vtgw-Type`, `X-Vtgw-Sender`,
    `X-Vtgw-Thread` and `X-Vtgw-Digest`, so the receiving side can route and
    deduplicate without parsing.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def hand_over(self, message: HandedMessage) -> None:
        if self._session is None:
            raise HandoffError("the webhook handoff is not started")
        headers = {
            "Content-Type": "application/json",
            "X-Vtgw-Message-Id": message.id,
            "X-Vtgw-Type": message.type,
            "X-Vtgw-Sender": message.sender,
            "X-Vtgw-Thread": message.thread,
            "X-Vtgw-Digest": message.digest,
        }
        try:
            async with self._session.post(self.url, data=message.raw, headers=headers) as reply:
                if not 200 <= reply.status < 300:
                    raise HandoffError(f"the webhook answered HTTP {reply.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HandoffError(f"the webhook is not reachable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class FolderHandoff:
    """Write each message as `<id>.json` into a folder the partner's system reads.

    The file appears complete or not at all: the partner's system should read
    `*.json` only (temporary files start with a dot) and remove or move what
    it has taken.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise HandoffError(f"cannot create the inbox folder {self.directory}: {exc}") from exc

    async def hand_over(self, message: HandedMessage) -> None:
        path = self.directory / f"{message.id}.json"
        try:
            await asyncio.to_thread(write_atomically, path, message.raw)
        except OSError as exc:
            raise HandoffError(f"cannot write {path.name} into {self.directory}: {exc}") from exc

    async def close(self) -> None:
        return None


def write_atomically(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Write `data` to `path` so that it is complete or absent, even after a power cut.

    Temporary name in the same folder, fsync, rename over `path`, fsync of
    the folder (so the rename itself is durable).
    """
    temporary = path.with_name(f".{path.name}.{uuid4().hex}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or creation in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
