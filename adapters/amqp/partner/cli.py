"""The `vtgw-partner` command: the adapter a partner runs beside its own system.

    vtgw-partner run --config partner.toml

Exit codes: 0 stopped cleanly (SIGTERM, SIGINT); 2 could not run (usage,
unreadable config or key, a contract that does not know the key, the broker
refusing the inbox); 3 a background loop failed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from adapters.amqp.partner.agent import PartnerAgent
from adapters.amqp.partner.messages import Partner
from adapters.amqp.partner.settings import PartnerConfig, load_partner_config
from adapters.crypto.keyfiles import read_private_key
from gateway.bootstrap import Paths, load_core
from gateway.domain.errors import GatewayError
from gateway.logs import configure_logging

EXIT_OK = 0
EXIT_CANNOT_RUN = 2
EXIT_FAILED = 3

log = structlog.get_logger("vtgw.partner")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        config = load_partner_config(args.config)
        partner = load_partner(config)
        return asyncio.run(run(partner, config))
    except (GatewayError, OSError) as exc:
        print(f"vtgw-partner: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN


def load_partner(config: PartnerConfig) -> Partner:
    """The partner's key and contracts, checked against each other."""
    core = load_core(Paths.defaults(contracts=config.contracts_dir))
    key = read_private_key(config.private_key, config.kid)
    return Partner.create(
        party=config.party, contracts=core.contracts, validator=core.validator, key=key
    )


async def run(partner: Partner, config: PartnerConfig) -> int:
    """Run the agent until SIGTERM or SIGINT; stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    agent = PartnerAgent(partner, config.agent)
    stopped = asyncio.create_task(stop.wait())
    starting = asyncio.create_task(agent.start())
    failed: asyncio.Task[None] | None = None
    try:
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # stopped while still connecting to the broker
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return EXIT_OK
        starting.result()  # a refusal at start (ConfigurationError) raises here
        failed = asyncio.create_task(agent.wait())
        await asyncio.wait({failed, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if failed.done() and failed.exception() is not None:
            log.error("partner_failed", error=repr(failed.exception()))
            return EXIT_FAILED
        return EXIT_OK
    finally:
        await agent.stop()
        for task in (stopped, failed):
            if task is not None:
                task.cancel()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vtgw-partner",
        description="The partner's adapter of the VT handover gateway (wire protocol v1).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_command = commands.add_parser(
        "run", help="receive, verify, receipt and hand over; sign and send the answers"
    )
    run_command.add_argument("--config", type=Path, required=True, help="partner.toml")
    run_command.add_argument("--verbose", action="store_true", help="debug logs")
    return parser


if __name__ == "__main__":
    sys.exit(main())
