"""The QoS of a cluster channel (:mod:`taskplane.celery.cluster`): the lease sweep of each queue, and each
rejection, off the worker's main loop (:mod:`taskplane.celery.aside`)."""

from __future__ import annotations

import functools
from typing import Any

from taskplane.celery.qos import QoS
from taskplane.compat import consumed_queues


class ClusterQoS(QoS):
    """The QoS of a cluster channel: each queue's lease sweep, and each rejection (a task returned to its queue
    when its node did not answer), run off the main loop (:mod:`~taskplane.celery.aside`), so that a frozen
    node holds up only what it serves."""

    def settle_rejected(self, queue: str, delivery_tag: str, requeue: bool) -> None:
        """:meth:`QoS.settle_rejected`, in a thread of its own."""
        settle = super().settle_rejected
        channel: Any = self.channel
        channel._taskplane_aside.run(f"reject:{delivery_tag}", functools.partial(settle, queue, delivery_tag, requeue))

    def restore_visible(self, start: int = 0, num: int | None = 10, interval: int = 10) -> None:
        """Start the sweep of each consumed queue whose last sweep ended (:meth:`QoS.sweep`)."""
        channel: Any = self.channel
        for queue in consumed_queues(channel):
            channel._taskplane_aside.run(f"lease-sweep:{queue}", functools.partial(self.sweep, [queue], start, num))
