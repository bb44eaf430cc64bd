"""taskplane's channel on a Valkey/Redis Cluster (issue 26), selected by a ``redis+cluster://`` URL.

Every command naming keys goes through redis-py's cluster client, to the node of their slot (a queue's keys
share one slot: :mod:`taskplane.redis.keys`). The fetch cannot: kombu's poller keeps one connection per
channel, and a ``BRPOP`` or a script may not span slots. So it runs in lanes (:mod:`taskplane.celery.lane`),
one per queue on a connection of its own to the queue's node, polled by :class:`LanePoller`, alternating as on
one server between a fetch of the queue and a wait on its bell; the prefetch budget goes to them highest tier
first. A lane whose node goes away (killed; frozen or cut off: no reply in time; failed over; the slot moved:
``MOVED``) is dropped and opened again, after a pause doubling from 0.25 s to 2 s, on the node the cluster
then names; the other lanes go on. What a lost node had in flight returns by its lease if its replica had it.
The main loop makes no call to a node at a time of its own choosing (:mod:`taskplane.celery.aside`), and
acknowledgements ride on the next fetch of their queue's lane: a frozen node holds up its own queues only.

Broadcasts (Celery's remote control) subscribe on one node: a cluster forwards a ``PUBLISH`` to every node.
kombu's binding tables are under one hash tag of their own, so that its scripts over them touch one slot.
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Empty
from redis.exceptions import RedisClusterException

from taskplane.celery.acks import PendingAcks
from taskplane.celery.aside import Aside
from taskplane.celery.cluster_qos import ClusterQoS
from taskplane.celery.lane import WAIT, Lane, LanePoller
from taskplane.celery.lane_opener import LANE_ERRORS, LOOKUP_TIMEOUT, MOVED_ERRORS, LaneOpener
from taskplane.celery.lookahead import Held
from taskplane.celery.transport import Channel, Transport
from taskplane.compat import consumed_queues, poll_timeout
from taskplane.core.cluster_url import parse_cluster_url
from taskplane.core.protocol import TransportOption
from taskplane.redis.client import connect
from taskplane.redis.cluster_url import connect_cluster
from taskplane.redis.scripts import load_script, run_script
from taskplane.redis.storage import Storage

#: Seconds past the poll timeout a lane waits for a reply before it takes its node for gone (frozen, or cut
#: off: a socket that never turns readable raises nothing).
LANE_STALL = 5.0
#: Seconds between two looks at whether kombu's expiring binding tables are due for a refresh.
BINDING_CHECK = 1.0


class ClusterChannel(Channel):
    """taskplane's channel over a cluster client, fetching in one lane per queue (see the module)."""

    QoS = ClusterQoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._taskplane_lanes: dict[str, Lane] = {}
        self._taskplane_lane_acks: dict[str, PendingAcks] = {}
        self._taskplane_aside = Aside()
        self._taskplane_binding_check = 0.0
        self._taskplane_opener = LaneOpener(self._cluster, lambda queue: self._keys.queue(queue), self._taskplane_aside)
        super().__init__(*args, **kwargs)

    def _cluster(self, lookup: bool = False) -> Any:
        """The channel's cluster client (bytes, as kombu's), built on first use from the cluster URL; with
        ``lookup``, the one the lane opener reads the slot map with, whose timeouts are short (a frozen node
        holds each lookup for :data:`LOOKUP_TIMEOUT` at most)."""
        name = "_taskplane_lookup" if lookup else "_taskplane_cluster"
        cluster = self.__dict__.get(name)
        if cluster is None:
            options = self._options
            parsed = parse_cluster_url(str(options[TransportOption.CLUSTER]))
            assert parsed is not None  # the app's configuration put a cluster URL there
            try:
                cluster = connect_cluster(
                    parsed,
                    socket_timeout=LOOKUP_TIMEOUT if lookup else options.get("socket_timeout"),
                    socket_connect_timeout=LOOKUP_TIMEOUT if lookup else options.get("socket_connect_timeout"),
                    socket_keepalive=True,
                    health_check_interval=options.get("health_check_interval", 0),
                )
            except RedisClusterException as exc:  # no node answered (it reads the slots as it is made): an outage
                raise redis.ConnectionError(f"no node of the cluster answers: {exc}".splitlines()[0]) from None
            self.__dict__[name] = cluster
        return cluster

    def _create_client(self, asynchronous: bool = False) -> Any:
        """The cluster client, for kombu's own commands (declaring, sizes, purges, bindings)."""
        return self._cluster()

    def conn_or_acquire(self, client: Any = None) -> Any:
        """The cluster client (one per channel; it keeps a pool per node)."""
        return contextlib.nullcontext(client or self._cluster())

    @functools.cached_property
    def subclient(self) -> Any:
        """Pub/sub on one node for broadcasts (a cluster forwards every ``PUBLISH`` to all its nodes)."""
        cluster = self._cluster()
        return cluster.get_redis_connection(cluster.get_default_node()).pubsub()

    @property
    def keyprefix_queue(self) -> str:  # type: ignore[override]
        """kombu's binding tables, all under one hash tag (its scripts name a table and the deadlines)."""
        return self._keys.tag("_kombu") + ".binding.%s"

    @property
    def keyprefix_binding_permanent(self) -> str:
        """kombu 5.7's sets of bindings that never expire, under the binding tables' hash tag."""
        return self._keys.tag("_kombu") + ".binding_permanent.%s"

    @property
    def keyprefix_binding_deadlines(self) -> str:
        """kombu 5.7's deadlines of expiring binding tables, under the binding tables' hash tag."""
        return self._keys.tag("_kombu") + ".binding_deadlines"

    def _delete(self, queue: str, exchange: str, routing_key: str, pattern: str, *args: Any, **kwargs: Any) -> None:
        """kombu's, whose pipeline chains ``DELETE`` (redis-py's cluster pipeline does not): the queue's binding
        and lists (the lists share one slot: one ``DEL``)."""
        channel: Any = self  # kombu's attributes are not in its type stubs
        channel.auto_delete_queues.discard(queue)
        member = channel.sep.join([routing_key or "", pattern or "", queue or ""])
        client = self._cluster()
        client.srem(self.keyprefix_queue % (exchange,), member)
        client.srem(self.keyprefix_binding_permanent % (exchange,), member)
        client.delete(*{self._q_for_pri(queue, priority) for priority in channel.priority_steps})

    def _storage(self) -> Storage:  # the stores over a decoding cluster client
        storage: Storage | None = self.__dict__.get("_taskplane_storage")
        if storage is None:
            url = str(self._options[TransportOption.CLUSTER])
            storage = self.__dict__["_taskplane_storage"] = Storage(connect(url), self._keys)
        return storage

    def _run_publish(self, script_keys: list[str], argv: list[Any]) -> Any:
        """One ``publish.lua`` call through the cluster client (to the node of the queue's slot)."""
        return run_script(self._cluster(), "publish", script_keys, argv)

    def _put_back_stale(self, stale: list[Held]) -> None:
        """Put held messages that went stale back in a thread per message: their node may be frozen."""
        for entry in stale:
            self._taskplane_aside.run(f"put-back:{entry.tag}", functools.partial(self._put_back, entry))

    def maybe_refresh_binding_expiry(self) -> None:
        """kombu 5.7's refresh and sweep of expiring binding tables, in a thread of its own (the tables' node
        may be frozen), at most every :data:`BINDING_CHECK` seconds: kombu's poller calls it on every poll,
        and it refreshes every third of the shortest binding expiry (10 s for Celery's remote control)."""
        now = time.monotonic()
        if now >= self._taskplane_binding_check:
            self._taskplane_binding_check = now + BINDING_CHECK
            kombus: Any = super()
            self._taskplane_aside.run("binding-expiry", kombus.maybe_refresh_binding_expiry)

    def _load_fetch(self) -> None:
        """Nothing: each lane loads the script on its node (:meth:`start_lane`)."""

    # -- the lanes --------------------------------------------------------------------------------------

    def lanes_to_start(self) -> list[Lane]:
        """The lanes of the consumed queues, in tier order, with no command under way (opened if need be)."""
        lanes = []
        for queue in consumed_queues(self):
            lane = self._taskplane_lanes.get(queue)
            if lane is not None and lane.busy and time.monotonic() - lane.sent_at > poll_timeout(self) + LANE_STALL:
                lane.acks.landed()  # whether its command ran is unknown: leases return what it did not do
                self._drop_lane(lane, TimeoutError(f"no reply in {time.monotonic() - lane.sent_at:.1f} s"))
                lane = None
            lane = lane or self._open_lane(queue)
            if lane is not None and not lane.busy:
                lanes.append(lane)
        return lanes

    def _open_lane(self, queue: str) -> Lane | None:
        """A lane for ``queue`` on the node serving its slot, once the opener found it (None until then)."""
        found = self._taskplane_opener.take(queue)
        if found is None:
            return None
        client, connection = found
        lane = Lane(self._acks_of(queue), queue, connection, client)
        self.handlers[lane.type] = functools.partial(self.read_lane, lane)
        self._taskplane_lanes[queue] = lane
        return lane

    def _acks_of(self, queue: str) -> PendingAcks:
        """The acknowledgements kept for ``queue``'s lane (they outlive a lane that is opened again)."""
        return self._taskplane_lane_acks.setdefault(queue, PendingAcks())

    def start_lane(self, lane: Lane) -> None:
        """Send ``lane``'s next command: a fetch of its queue (up to what the free processes take, less what
        the other lanes' fetches under way may take), or a wait on its bell."""
        if lane.busy or self._taskplane_pause.waiting or lane.queue is None:
            return
        most = self._budget(sum(other.most for other in self._taskplane_lanes.values() if other.busy))
        if not most:
            return
        lane.sent = lane.next
        try:
            if lane.sent == WAIT:
                self._flush(lane.acks)
                lane.connection.send_command("BRPOP", self._keys.bell(lane.queue), poll_timeout(self))
            else:
                if not lane.loaded:
                    load_script(lane.client, "fetch")
                    lane.loaded = True
                fetch = self._fetch_command([self._group(lane.queue)], most, lane.acks.ride([lane.queue]))
                lane.connection.send_command(*fetch)
                lane.most = most
            lane.busy, lane.sent_at = True, time.monotonic()
        except LANE_ERRORS as exc:
            lane.acks.refused()
            self._drop_lane(lane, exc)

    def read_lane(self, lane: Lane) -> bool:
        """Read the reply to ``lane``'s command (kombu's poller calls it when its socket is readable).

        Raises:
            Empty: nothing was delivered.
        """
        try:
            return self._read_lane(
                lane, lambda command: lane.client.parse_response(lane.connection, command), lane.connection.disconnect
            )
        except MOVED_ERRORS as exc:  # refused whole: nothing taken, the acknowledgements stay kept
            lane.acks.refused()
            self._drop_lane(lane, exc)
            raise Empty() from None
        except Transport.connection_errors as exc:  # _read_lane settled its acknowledgements
            self._drop_lane(lane, exc)
            raise Empty() from None
        finally:
            lane.busy = False
            lane.most = 0

    def _poll_error(self, kind: str, **options: Any) -> Any:
        """kombu's, for an error event on a watched socket; a lane's is read as its reply (and dropped)."""
        lane = self._taskplane_lanes.get(kind.removeprefix(Lane.TYPE)) if kind.startswith(Lane.TYPE) else None
        if lane is not None:
            return self.read_lane(lane)
        kombus: Any = super()
        return kombus._poll_error(kind, **options)

    def _drop_lane(self, lane: Lane, exc: BaseException) -> None:
        """Close ``lane`` after its node went away or its slot moved; the queue's lane opens again later."""
        assert lane.queue is not None
        if self._taskplane_lanes.get(lane.queue) is lane:
            del self._taskplane_lanes[lane.queue]
        self._taskplane_opener.dropped(lane.queue, exc)
        cycle = self.connection.cycle if self.connection is not None else None
        if isinstance(cycle, LanePoller):
            cycle.drop_lane(self, lane)
        lane.connection.disconnect()
        lane.client.connection_pool.release(lane.connection)

    def acknowledge(self, queue: str, delivery_tag: str) -> None:
        """Acknowledge ``delivery_tag`` with the next fetch of its queue's lane: within the poll timeout when the
        lane waits on its bell, once it opens again when it has none (its lease returns the delivery if that
        takes too long). Never at once from the main loop, whose call would wait out a frozen node; but at
        once while the server refuses fetches (full: deletes are allowed)."""
        acks = self._acks_of(queue)
        acks.add(queue, delivery_tag)
        if self._taskplane_pause.wait:
            self._flush(acks)

    def flush_acks(self) -> None:
        """Send every lane's kept acknowledgements now."""
        for acks in self._taskplane_lane_acks.values():
            self._flush(acks)

    def _flush(self, acks: PendingAcks) -> None:  # kept if it fails
        if acks.kept:
            try:
                acks.flush(self._cluster(), self._keys, LANE_ERRORS)
            except LANE_ERRORS as exc:
                kombu_redis.logger.warning("could not acknowledge now (%s): they ride on a later fetch", exc)

    def _close_clients(self) -> None:
        """kombu's, and each lane's connection and the cluster client."""
        for lane in list(self._taskplane_lanes.values()):
            if lane.busy and lane.sent != WAIT:  # what its fetch took is handed over, then returned by the QoS
                with contextlib.suppress(Exception):  # closing: its lease returns what it took
                    self.read_lane(lane)
            lane.connection.disconnect()
        self._taskplane_lanes.clear()
        self._taskplane_opener.close()
        kombus: Any = super()
        kombus._close_clients()
        for name in ("_taskplane_cluster", "_taskplane_lookup"):
            cluster = self.__dict__.pop(name, None)
            if cluster is not None:
                cluster.close()


class ClusterTransport(Transport):
    """taskplane's transport on a cluster: :class:`ClusterChannel` and :class:`LanePoller`."""

    Channel = ClusterChannel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cycle = LanePoller()
