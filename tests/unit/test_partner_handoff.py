"""Handing messages over to the partner's system: complete files, or a webhook's 2xx."""

from __future__ import annotations

import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.amqp.partner.handoff import (
    FolderHandoff,
    HandedMessage,
    HandoffError,
    WebhookHandoff,
    write_atomically,
)

MESSAGE = HandedMessage(
    id="881a3efd-5221-47fd-8b10-b7e872c95cf4",
    type="enrichment.request",
    sender="vt-gz",
    thread="881a3efd-5221-47fd-8b10-b7e872c95cf4",
    digest="sha256:" + "a" * 64,
    raw=b'{"type":"enrichment.request"}',
)

Server = Callable[[web.Application], Awaitable[TestServer]]


def test_a_file_written_atomically_is_complete_and_leaves_no_temporary_behind(
    tmp_path: Path,
) -> None:
    """Only the final name remains, with exactly the bytes, group-readable, not world-readable."""
    target = tmp_path / "a.json"

    write_atomically(target, b"{}")
    write_atomically(target, b'{"again":1}')

    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert target.read_bytes() == b'{"again":1}'
    assert stat.S_IMODE(target.stat().st_mode) & stat.S_IROTH == 0


def test_a_failed_atomic_write_leaves_nothing(tmp_path: Path) -> None:
    """Renaming onto a folder fails: no temporary file is left lying about."""
    (tmp_path / "a.json").mkdir()

    with pytest.raises(OSError):  # noqa: PT011 - the OS decides which one
        write_atomically(tmp_path / "a.json", b"{}")

    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


async def test_the_folder_handoff_writes_the_message_as_its_id(tmp_path: Path) -> None:
    """`<id>.json` with the envelope exactly as received; the folder made if missing."""
    handoff = FolderHandoff(tmp_path / "inbox")
    await handoff.start()

    await handoff.hand_over(MESSAGE)

    assert (tmp_path / "inbox" / f"{MESSAGE.id}.json").read_bytes() == MESSAGE.raw


async def test_a_folder_that_cannot_be_written_is_a_handoff_error(tmp_path: Path) -> None:
    """A file where the folder should be: HandoffError (transient), not a crash."""
    (tmp_path / "inbox").write_text("not a folder", encoding="utf-8")
    handoff = FolderHandoff(tmp_path / "inbox")

    with pytest.raises(HandoffError):
        await handoff.hand_over(MESSAGE)


async def webhook(aiohttp_server: Server, status: int, calls: list[Any]) -> str:
    async def handle(request: web.Request) -> web.Response:
        calls.append((dict(request.headers), await request.read()))
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/hook"))


async def test_the_webhook_gets_the_envelope_with_its_identity_in_headers(
    aiohttp_server: Server,
) -> None:
    """The exact bytes as application/json; id, type, sender, thread and digest as headers."""
    calls: list[Any] = []
    handoff = WebhookHandoff(await webhook(aiohttp_server, 204, calls))
    await handoff.start()
    try:
        await handoff.hand_over(MESSAGE)
    finally:
        await handoff.close()

    [(headers, body)] = calls
    assert body == MESSAGE.raw
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Vtgw-Message-Id"] == MESSAGE.id
    assert headers["X-Vtgw-Type"] == MESSAGE.type
    assert headers["X-Vtgw-Digest"] == MESSAGE.digest


async def test_a_webhook_answer_other_than_2xx_is_a_handoff_error(
    aiohttp_server: Server,
) -> None:
    """500 means the partner's system does not have it: HandoffError."""
    handoff = WebhookHandoff(await webhook(aiohttp_server, 500, []))
    await handoff.start()
    try:
        with pytest.raises(HandoffError, match="500"):
            await handoff.hand_over(MESSAGE)
    finally:
        await handoff.close()


async def test_an_unreachable_webhook_is_a_handoff_error() -> None:
    """Nothing listens: HandoffError, naming no address or body."""
    handoff = WebhookHandoff("http://127.0.0.1:1/hook", timeout=2)
    await handoff.start()
    try:
        with pytest.raises(HandoffError, match="not reachable"):
            await handoff.hand_over(MESSAGE)
    finally:
        await handoff.close()
