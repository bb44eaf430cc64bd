"""What a publish carries from ``send_task`` to the transport: the writes that must land together with
the message (the record, an idempotency or uniqueness claim), so the transport sends them in the same atomic step."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import redis

from taskplane.redis.batch import Batch
from taskplane.redis.publish_ops import fence_claims, new_nonce

#: How long a publish's own claim (:meth:`PendingWrites.guard`) lives: longer than any resend of it waits.
SENT_CLAIM_MS = 120_000


@dataclass
class PendingWrites:
    """Writes to send with the next message this context publishes; ``sent`` once they went out with it."""

    batch: Batch
    sent: bool = False
    #: When a claim of the batch was found taken: (its key, the value holding it); nothing was published then.
    claimed: tuple[str, str] | None = None
    #: This publish's own claim value, the same in every resend of it (a new one once a fence took the old
    #: one: :meth:`went_out`).
    nonce: str = field(default_factory=new_nonce)
    guarded: bool = False

    def guard(self, key: str) -> None:
        """Make ``key`` this publish's own claim, first of its claims: a resend of the same publish (a reply
        lost to a timeout or a broken connection, sent again by redis-py, kombu or taskplane) finds it taken
        and writes nothing, so a publish whose outcome was unknown is never applied twice."""
        if not self.guarded:
            self.batch.claims.insert(0, (key, self.nonce, SENT_CLAIM_MS))
            self.guarded = True

    def went_out(self, client: redis.Redis) -> bool:
        """After a send of this guarded publish got no reply in time: True when it went out. Else a fence now
        holds its own claim (:func:`~taskplane.redis.publish_ops.fence_claims`), so the send that timed out
        can never apply, and the publish gets a new claim for its next send. Raises ``client``'s errors
        when the server does not answer."""
        if not fence_claims(client, [(self.batch.claims[0][0], SENT_CLAIM_MS)])[0]:
            return True
        del self.batch.claims[0]
        self.nonce, self.guarded = new_nonce(), False
        return False

    def note_reply(self, reply: Any) -> None:
        """Note the claim ``publish.lua`` found taken, when it replied with one (it wrote nothing then); this
        publish's own claim means an earlier send of it went out."""
        if not isinstance(reply, list):
            return
        position, value = int(reply[0]), reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        if self.guarded and position == 1 and value == self.nonce:
            return
        self.claimed = (self.batch.claims[position - 1][0], value)


pending_writes: ContextVar[PendingWrites | None] = ContextVar("taskplane_pending_writes", default=None)
