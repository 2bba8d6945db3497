"""schemathesis runs the API's own OpenAPI document against the running API.

VT's API (`create_api_app`, mounted at /api/v1 as the gateway mounts it) is
served on a free port by a thread of its own, over a real SQLite store that
already holds a submitted message and its case; schemathesis generates
requests for every operation of `adapters/http/openapi.json` (valid ones and,
in its negative phases, invalid ones), sends them with a caller's bearer
token and checks each answer with its default checks: no server error, a
documented status, content type and headers, a body that fits the documented
schema, invalid data refused and valid data accepted.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

import gateway.vectors
from adapters.http.api import API_PREFIX, create_api_app
from adapters.http.auth import ApiTokens, hash_token
from adapters.store import migrate, open_store
from gateway.bootstrap import Paths, load_core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.resources import data_dir
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from tests.integration.gateway_rig import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "adapters" / "http" / "openapi.json"
TOKEN = "schemathesis-token-for-tests-only-0123456789"  # noqa: S105 - a test token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES_PER_OPERATION = 25  # all eleven operations in well under a minute

# A request of the document's shape whose message the protocol refuses (a body that fails
# its type's schema, a reply to no known message, a contract that forbids it) is a
# documented 422: positive data may meet it, as it may a 404 or a 409.
CONFIG = SchemathesisConfig.from_str(
    """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
"""
)
schema = schemathesis.openapi.from_path(DOCUMENT, config=CONFIG)


class LiveApi:
    """The API on a free port, served by an event loop in a thread of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}{API_PREFIX}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._closers: list[Any] = []

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=60)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _serve(self) -> None:
        core = load_core(Paths.defaults())
        contracts = gateway.vectors.with_test_keys(core.contracts)
        hub = Hub(
            Verifier(contracts, core.validator, "vt-gz"),
            gateway.vectors.vector_key("vt-gz"),
            WorkingDayCalendar.for_region(core.region),
        )
        dsn = f"sqlite+aiosqlite:///{self.directory / 'store.db'}"
        await migrate(dsn)
        store = await open_store(dsn)
        self._closers.append(store.close)
        tokens = ApiTokens.from_mapping({"zaaksysteem": hash_token(TOKEN)})
        api = create_api_app(
            store=store,
            hub=hub,
            region=core.region,
            tokens=tokens,
            clock=lambda: gateway.vectors.VECTOR_NOW,
        )
        root = web.Application()
        root.add_subapp(API_PREFIX, api)
        self._runner = web.AppRunner(root, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        for close in self._closers:
            await close()


def _seed(base_url: str) -> None:
    """One enrichment request, so that a message, a case and its ledger exist."""
    examples = {
        e["type"]: e for e in gateway.vectors.load_examples(data_dir("schemas") / "examples")
    }
    example = examples["enrichment.request"]
    submission = {"type": example["type"], "case": example["case"], "body": example["body"]}
    answer = requests.post(
        f"{base_url}/messages",
        data=json.dumps(submission),
        headers=AUTH | {"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = LiveApi(tmp_path_factory.mktemp("schemathesis"))
    server.start()
    try:
        _seed(server.base_url)
        yield server.base_url
    finally:
        server.stop()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_keeps_its_openapi_document(case: schemathesis.Case, live_api: str) -> None:
    """Every generated request gets an answer the document describes, and never a 500."""
    case.call_and_validate(base_url=live_api, headers=AUTH)
