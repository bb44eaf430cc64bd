"""What a publish carries from ``send_task`` to the transport: the writes that must land together with
the message (the record, an idempotency or uniqueness claim), so the transport sends them in the same atomic step."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from taskplane.redis.scripts import Batch


@dataclass
class PendingWrites:
    """Writes to send with the next message this context publishes; ``sent`` once they went out with it."""

    batch: Batch
    sent: bool = False
    #: When a claim of the batch was found taken: (its position among the claims, the value holding it);
    #: nothing was published then.
    claimed: tuple[int, str] | None = None

    def note_reply(self, reply: Any) -> None:
        """Note the claim ``publish.lua`` found taken, when it replied with one (it wrote nothing then)."""
        if isinstance(reply, list):
            value = reply[1]
            self.claimed = (int(reply[0]), value.decode() if isinstance(value, bytes) else str(value))


pending_writes: ContextVar[PendingWrites | None] = ContextVar("taskplane_pending_writes", default=None)
