"""One fetch connection's state (:mod:`taskplane.celery.fetch`): which command goes next on it, which is under
way, and the acknowledgements that ride on its fetches.

On one server a worker's channel has one lane over every queue it consumes, on the channel's own connection.
On a cluster (:mod:`taskplane.celery.cluster`) it has one lane per queue, each on a connection of its own to
the node serving that queue's slot: a command may not span slots there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from kombu.transport import redis as kombu_redis

from taskplane.celery.acks import PendingAcks
from taskplane.compat import poller_owner, poller_unwatch, poller_watch

FETCH = "fetch"
WAIT = "wait"


@dataclass(eq=False)
class Lane:
    """What one fetch connection sends and reads (see the module)."""

    #: What the names kombu's poller files cluster lanes' sockets under start with.
    TYPE: ClassVar[str] = "taskplane-lane:"

    #: Kept for the next fetch of this lane, and those its fetch under way carries.
    acks: PendingAcks = field(default_factory=PendingAcks)
    #: The queue of a cluster lane (None: the one lane of a single server, over every consumed queue).
    queue: str | None = None
    #: A cluster lane's connection and the node's client that reads its replies (None on a single server:
    #: the channel's own connection).
    connection: Any = None
    client: Any = None
    #: The command that goes next (FETCH or WAIT), and the one under way.
    next: str = FETCH
    sent: str = FETCH
    #: A command is under way on a cluster lane; how many messages its fetch may take.
    busy: bool = False
    most: int = 0
    #: When its command under way was sent (monotonic): a cluster lane with no reply for long is dropped.
    sent_at: float = 0.0
    #: A cluster lane's node has the fetch script (it is loaded once per node, and again after NOSCRIPT).
    loaded: bool = False

    @property
    def type(self) -> str:
        """The name kombu's poller files this lane's socket under (a cluster lane)."""
        return f"{self.TYPE}{self.queue}"


class LanePoller(kombu_redis.MultiChannelPoller):
    """kombu's poller, polling each cluster channel's lanes instead of one connection per channel."""

    def _register_BRPOP(self, channel: Any) -> None:
        """Where kombu would send a channel's BRPOP (while processes are free: from its poll start, and from its
        ``get`` without an event loop): send the next command of each of the channel's idle lanes."""
        for lane in channel.lanes_to_start():
            poller_watch(self, channel, lane, lane.type)
            channel.start_lane(lane)

    def on_readable(self, fileno: int) -> Any:
        """A lane's reply is always read (a fetch's messages over the free processes are held), else kombu's."""
        owner = poller_owner(self, fileno)
        if owner is not None and owner[1].startswith(Lane.TYPE):
            return owner[0].handlers[owner[1]]()
        return super().on_readable(fileno)

    def drop_lane(self, channel: Any, lane: Lane) -> None:
        """Stop polling ``lane``'s socket."""
        poller_unwatch(self, channel, lane, lane.type)
