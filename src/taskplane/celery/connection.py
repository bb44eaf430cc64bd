"""kombu's Connection for taskplane's transport, whose URI names the Redis it connects to (``redis://``,
``rediss://``) rather than the transport's class path: tools that recognise a broker by its URL scheme
(Flower's Broker tab) then read the queues, with the key prefix and priority steps of the transport options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery.app.amqp import AMQP
from kombu import Connection

#: How kombu names taskplane's transport in a URI: on one server, and on a cluster (whose URI then names
#: the node kombu was given).
TRANSPORT_PATH = "taskplane.celery.transport:Transport"
CLUSTER_TRANSPORT_PATH = "taskplane.celery.cluster:ClusterTransport"


class TaskplaneConnection(Connection):
    """A kombu Connection that shows taskplane's transport as the Redis URL it uses."""

    def as_uri(
        self, include_password: bool = False, mask: str = "**", getfields: Callable[..., Any] | None = None
    ) -> str:
        """The connection as a URL: ``redis://`` (or ``rediss://``) for taskplane's transport."""
        extra = {} if getfields is None else {"getfields": getfields}  # kombu's own default otherwise
        uri = str(super().as_uri(include_password, mask, **extra))
        head, sep, rest = uri.partition("://")
        if sep and head in (TRANSPORT_PATH, CLUSTER_TRANSPORT_PATH):
            return f"{'rediss' if self.ssl else 'redis'}://{rest}"
        return uri


class TaskplaneAMQP(AMQP):
    """Celery's AMQP helper making :class:`TaskplaneConnection` connections."""

    Connection = TaskplaneConnection
