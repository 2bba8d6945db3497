"""The partner's adapter: what a partner runs beside its own system, and what the tests use.

```
vtgw.out.<party> --> PartnerInbox: verify (as from the hub) -> dedupe (ledger)
                       -> hand over (webhook | folder) -> signed receipt to vtgw.in -> ack
partner's system --> POST /answers | outbox/*.json --> AnswerSender: sign, store,
                       publish to vtgw.in, resend until VT's receipt comes
```

- `agent`: `PartnerAgent`, the running adapter (connection, consumer, the
  one place deliveries are settled, the answers endpoint and loops).
- `inbox`: one message from the inbox, up to the ack decision.
- `answers`: the partner's answers: build, store, send, resend.
- `messages`: the messages a partner signs (pure).
- `ledger`: the SQLite memory (received ids, answers).
- `handoff`: to the partner's system: webhook or folder.
- `endpoint`, `outbox`: where the partner's system hands in its answers.
- `rejected`: refused messages, kept with their reason.
- `courier`: publishing to `vtgw.in` as the partner's broker user.
- `settings`, `cli`: `vtgw-partner run --config partner.toml`.
"""

from adapters.amqp.partner.agent import PartnerAgent, handoff_for
from adapters.amqp.partner.answers import AnswerSender, ResendPolicy
from adapters.amqp.partner.handoff import (
    FolderHandoff,
    HandedMessage,
    Handoff,
    HandoffError,
    WebhookHandoff,
)
from adapters.amqp.partner.inbox import PartnerInbox, Received, Settlement
from adapters.amqp.partner.ledger import Answer, AnswerStatus, PartnerLedger, ReceivedMessage
from adapters.amqp.partner.messages import AnswerRequest, Partner
from adapters.amqp.partner.settings import (
    AgentSettings,
    FolderTarget,
    PartnerConfig,
    WebhookTarget,
    load_partner_config,
)

__all__ = [
    "AgentSettings",
    "Answer",
    "AnswerRequest",
    "AnswerSender",
    "AnswerStatus",
    "FolderHandoff",
    "FolderTarget",
    "HandedMessage",
    "Handoff",
    "HandoffError",
    "Partner",
    "PartnerAgent",
    "PartnerConfig",
    "PartnerInbox",
    "PartnerLedger",
    "Received",
    "ReceivedMessage",
    "ResendPolicy",
    "Settlement",
    "WebhookHandoff",
    "WebhookTarget",
    "handoff_for",
    "load_partner_config",
]
