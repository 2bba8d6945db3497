"""The e-mail bridge wired from the settings: what `vt-gateway run` starts when `[email]` is set.

`open_bridge` builds the bridge's context (its store on the gateway's
database, the bridge's signing key, the token secret, SMTP out); the
`EmailBridge` it returns gives the runtime the EMAIL publisher for the outbox
relay, the /bridge/ pages, the inbound SMTP listener to start and stop, and
`after_round`, the periodic work (the teams' receipts after each relay
round, reminders every `reminder_interval`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from aiohttp import web

from adapters.email.content import Sender
from adapters.email.context import BridgeContext
from adapters.email.inbound import BridgeListener, BridgeMailbox
from adapters.email.outbound import EmailPublisher, record_receipts
from adapters.email.pages import RateLimiter, create_pages_app
from adapters.email.reminders import send_reminders
from adapters.email.signing import TeamSigner, bridge_signing_key
from adapters.email.smtp import SmtpOut
from adapters.email.store import BridgeStore
from adapters.email.tokens import load_secret
from adapters.store.sql import SqlStore
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Transport
from gateway.domain.errors import ConfigurationError
from gateway.service.outgoing import Hub
from gateway.settings import EmailSettings, Settings

log = structlog.get_logger("vtgw.email")


@dataclass
class EmailBridge:
    """The bridge's running parts."""

    context: BridgeContext
    settings: EmailSettings
    listener: BridgeListener | None = None
    _reminders_due: datetime | None = field(default=None, repr=False)

    def publisher(self) -> EmailPublisher:
        return EmailPublisher(self.context)

    def pages_app(self, limiter: RateLimiter | None = None) -> web.Application:
        return create_pages_app(self.context, limiter)

    async def start_listener(self) -> None:
        if self.settings.inbound_port == 0:
            log.info("bridge_no_listener")
            return
        mailbox = BridgeMailbox(self.context, frozenset({self.settings.from_address}))
        domain = self.settings.from_address.rpartition("@")[2] or "localhost"
        self.listener = BridgeListener(
            mailbox, self.settings.inbound_host, self.settings.inbound_port, domain
        )
        await self.listener.start()

    async def after_round(self, now: datetime) -> int:
        """The receipts of mails accepted since the last round; reminders when their time is."""
        done = await record_receipts(self.context, now)
        if self._reminders_due is None or now >= self._reminders_due:
            self._reminders_due = now + self.settings.reminder_interval
            done += await send_reminders(self.context, now)
        return done

    async def close(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
        await self.context.store.close()


def open_bridge(
    settings: Settings,
    store: SqlStore,
    hub: Hub,
    calendar: WorkingDayCalendar,
    clock: Callable[[], datetime],
) -> EmailBridge:
    """The bridge of these settings (which must have an `[email]` table)."""
    email = settings.email
    if email is None:
        raise ConfigurationError("the settings have no [email] table")
    contracts = hub.verifier.contracts
    bridge = next((c for c in contracts if c.transport is Transport.BRIDGE), None)
    if bridge is None:
        raise ConfigurationError("no contract of the e-mail bridge (transport bridge)")
    key = bridge_signing_key(contracts, settings.keys_dir, email.signing_kid, clock())
    context = BridgeContext(
        store=BridgeStore(store),
        hub=hub,
        signer=TeamSigner(key),
        bridge_party=bridge.party,
        secret=load_secret(email.token_secret_file),
        smtp=SmtpOut(
            host=email.smtp_host,
            port=email.smtp_port,
            security=email.smtp_security,
            username=email.smtp_username,
            password=email.smtp_password,
            timeout=email.smtp_timeout,
        ),
        sender=Sender(email.from_address, email.from_name),
        public_base_url=email.public_base_url,
        link_lifetime=email.link_lifetime,
        calendar=calendar,
        clock=clock,
    )
    log.info("bridge_ready", party=bridge.party, kid=key.kid, smtp_security=email.smtp_security)
    return EmailBridge(context, email)
