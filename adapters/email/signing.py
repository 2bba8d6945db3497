"""The messages the bridge makes on a team's behalf, signed with the bridge's key.

A party on the e-mail transport has no keys: its `signed_by` contract, the
bridge `vtgw-bridge`, signs for it (PROTOCOL.md, "Signature and keys"). The
envelope's `sender` is the team; the transport identity the gateway sees is
the bridge's. What the team did to make the message (link, reply) is kept as
evidence beside it (`adapters.email.store`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.crypto.keyfiles import key_path, read_private_key
from gateway.domain.contracts import Contracts, Transport
from gateway.domain.envelope import CaseRef, Envelope, format_timestamp, new_message_id
from gateway.domain.errors import ConfigurationError
from gateway.domain.signatures import SigningKey, sign_with_digest
from gateway.service.ports import StoredMessage

BRIDGE_PARTY = "vtgw-bridge"
"""The bridge's party id: the transport identity of every message it makes."""


@dataclass(frozen=True, slots=True)
class Made:
    """A message the bridge made: its id, its digest and its bytes."""

    id: str
    type: str
    digest: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class TeamSigner:
    """Makes a team's answers and receipts, signed by the bridge."""

    key: SigningKey

    def answer(
        self,
        *,
        team: str,
        message_type: str,
        original: StoredMessage,
        body: Mapping[str, Any],
        now: datetime,
    ) -> Made:
        """An answer of the team to the hub's message: reply_to, thread and case of it."""
        case = (
            CaseRef(original.case_ref, original.gemeente)
            if original.case_ref is not None and original.gemeente is not None
            else None
        )
        return self._made(
            Envelope(
                id=new_message_id(),
                type=message_type,
                sender=team,
                recipient=original.sender,
                sent_at=now,
                thread=original.thread,
                reply_to=original.id,
                case=case,
                body=dict(body),
            )
        )

    def receipt(self, *, team: str, original: StoredMessage, received_at: datetime) -> Made:
        """The team's receipt of the hub's message: its digest, received when the mail was
        accepted by the bridge's SMTP server (docs/email-bridge.md, "Receipts")."""
        return self._made(
            Envelope(
                id=new_message_id(),
                type="receipt",
                sender=team,
                recipient=original.sender,
                sent_at=received_at,
                thread=original.thread,
                reply_to=original.id,
                body={"digest": original.digest, "received_at": format_timestamp(received_at)},
            )
        )

    def _made(self, envelope: Envelope) -> Made:
        signed, digest = sign_with_digest(envelope, self.key)
        raw = json.dumps(signed.to_json(), ensure_ascii=False, separators=(",", ":"))
        return Made(signed.id, signed.type, digest, raw.encode("utf-8"))


def bridge_signing_key(contracts: Contracts, keys_dir: Path, kid: str, now: datetime) -> SigningKey:
    """The bridge's key: the configured kid, or its newest valid key with a private half on disk."""
    bridge = next((c for c in contracts if c.transport is Transport.BRIDGE), None)
    if bridge is None:
        raise ConfigurationError("no contract of the e-mail bridge (transport bridge)")
    candidates = [
        key
        for key in sorted(bridge.keys, key=lambda k: k.not_before, reverse=True)
        if key.valid_for(signed_at=now, now=now)
        and (not kid or key.kid == kid)
        and key_path(keys_dir, bridge.party, key.kid).exists()
    ]
    if not candidates:
        raise ConfigurationError(
            f"no valid signing key of '{bridge.party}' with a private key in {keys_dir}"
            " (development: `vt-gateway dev init`)"
        )
    chosen = candidates[0].kid
    return read_private_key(key_path(keys_dir, bridge.party, chosen), chosen)
