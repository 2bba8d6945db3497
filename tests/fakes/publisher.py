"""A publisher that records what it is asked to publish, and can be told to fail."""

from __future__ import annotations

from gateway.domain.errors import TransientError
from gateway.service.ports import OutboxItem


class RecordingPublisher:
    """Implements the Publisher port in memory: `published` holds every confirmed item."""

    def __init__(self) -> None:
        self.published: list[OutboxItem] = []
        self.fail_after: int | None = None

    async def publish(self, item: OutboxItem) -> None:
        if self.fail_after is not None and len(self.published) >= self.fail_after:
            raise TransientError("broker unreachable (test)")
        self.published.append(item)
