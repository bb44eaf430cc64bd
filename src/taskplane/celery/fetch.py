"""Lossless fetch for kombu's Redis channel: a message leaves its queue only in the same atomic step that
puts it in flight under a lease (``redis/lua/fetch.lua``), never by a bare BRPOP.

kombu's consumer loop sends one command on a fetch connection (a :class:`taskplane.celery.lane.Lane`: the
channel's own on one server, one per queue on a cluster) and reads it when the reply arrives. It alternates:

- ``fetch``: the script acknowledges the deliveries finished since the last fetch, takes the next messages
  (as many as the prefetch allows, from the first non-empty list in tier and priority order), writes them to
  their queue's unacked hash and lease index, and returns them. While messages come, another fetch follows.
- ``wait``: when the queues were empty, a BRPOP on their bells blocks until a publisher rings (every taskplane
  publish, delayed move and requeue does) or the poll timeout passes; then a fetch. A message pushed without
  a bell (a plain LPUSH) waits at most one poll timeout.

Nothing is popped by a command whose reply could be lost: after a kill, a partition or a server crash the
lease returns what the script put in flight. Items are decoded strictly: one that is not UTF-8 text is
dead-lettered with its bytes (kombu would replace them).

The fetch also starts the tasks it takes (what ``run_start.lua`` does in a task's process: the cancelled and
already-done checks, the delivery count, the record written as started) and hands its verdict to the task's
process in the :attr:`Header.STARTED` header: no round trip before the task's body. Not started here (their
process starts them): tasks with a rate limit (their slot is keyed by their arguments), messages with an ETA
or an expiry (Celery may hold or drop them), and every message when signing is on (nothing is written for a
message before its signature is verified).

The fetch takes one message more than the free processes need, held for the next process that frees
(:mod:`taskplane.celery.lookahead`). Acknowledgements ride on the next fetch unless a wait is under way; then,
and when the channel closes, they are sent at once. An acknowledgement lost with its process leaves a delivery
whose lease returns it: the task's record says it finished, and the start script refuses to run it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Empty
from kombu.utils.encoding import bytes_to_str
from redis.exceptions import NoScriptError, OutOfMemoryError

from taskplane.celery.acks import PendingAcks
from taskplane.celery.intake import taken_from
from taskplane.celery.lane import FETCH, WAIT, Lane
from taskplane.celery.lookahead import Lookahead
from taskplane.celery.validation import parse_item
from taskplane.compat import consumed_queues, poll_done, poll_in_flight, poll_sent, poll_timeout
from taskplane.core.backoff import Backoff
from taskplane.redis.scripts import RUN_COMMAND, load_script, run_script, script_command
from taskplane.stores.records import start_arguments

#: The most messages one fetch takes (each also bounded by the free prefetch slots).
FETCH_MAX = 16
#: Seconds the fetch first waits after a full server refused it, and at most (the wait doubles).
REFUSED_PAUSE = (0.25, 2.0)


class LosslessFetch(Lookahead):
    """Mixin for :class:`taskplane.celery.transport.Channel` (needs kombu's Redis channel under it)."""

    _taskplane_fetch_sha: str | None = None
    #: The channel's fetch connection on one server (on a cluster, one lane per queue: celery/cluster.py).
    _taskplane_lane: Lane
    #: Finished deliveries to acknowledge with the next fetch, and those the fetch under way carries (the lane's).
    _taskplane_acks: PendingAcks
    #: The fetch's pauses while the server refuses it for want of memory (:data:`REFUSED_PAUSE`).
    _taskplane_pause: Backoff

    def _groups(self) -> list[list[str]]:
        """``fetch.lua``'s keys, one group per active queue in tier order: the queue's unacked hash, lease
        index, bell and quarantine, then its lists by priority step."""
        channel: Any = self
        queues = tuple(consumed_queues(channel))
        cached = self.__dict__.get("_taskplane_groups")
        if cached is None or cached[0] != queues:
            cached = self.__dict__["_taskplane_groups"] = (queues, [self._group(queue) for queue in queues])
        return list(cached[1])

    def _group(self, queue: str) -> list[str]:
        """``fetch.lua``'s keys of one queue (see :meth:`_groups`)."""
        channel: Any = self
        keys = self._keys
        return [
            keys.unacked(queue),
            keys.unacked_index(queue),
            keys.bell(queue),
            keys.quarantine(queue),
            *(channel._q_for_pri(queue, pri) for pri in channel.priority_steps),
        ]

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        """One message of ``queue``, for kombu's ``basic_get`` (kombu's pops it, then records it in flight: a
        kill between lost it): taken and put in flight in one ``fetch.lua`` call, its task not started.

        Raises:
            Empty: nothing waits in ``queue`` (or what was taken was dead-lettered).
        """
        group = self._group(queue)
        channel: Any = self
        with channel.conn_or_acquire() as client:
            reply = run_script(client, "fetch", group, [time.time(), 1, len(group) - 4, 1, queue, 0, ""])
        if not reply:
            raise Empty()
        tag = bytes_to_str(reply[2]) if reply[2] else None
        try:
            item = reply[1].decode() if isinstance(reply[1], bytes) else reply[1]
        except UnicodeDecodeError:
            self._quarantined(queue, reply[1], tag)
            raise Empty() from None
        if not tag:  # not a kombu message: set aside by the script, dead-lettered here
            self._quarantined(queue, item)
            raise Empty()
        message, problem = parse_item(item, len(item), self._payload_limit())
        if message is None:
            self._invalid(queue, item, {}, tag, problem or "unreadable")
            raise Empty()
        self._taskplane_fetched[tag] = queue  # in flight already: the QoS writes nothing
        return taken_from(message, queue)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        """kombu's, lossless (:meth:`_get`); a message taken without acknowledgement leaves flight at once."""
        message = super().basic_get(queue, no_ack, **kwargs)  # type: ignore[misc]  # kombu's channel below
        if message is not None and no_ack:
            channel: Any = self
            self._taskplane_fetched.pop(message.delivery_tag, None)
            channel.leave_flight(queue, message.delivery_tag)
        return message

    def _brpop_start(self, timeout: float | None = None) -> None:
        channel: Any = self
        groups = self._groups()
        if not groups or self._taskplane_pause.waiting:
            return
        most = self._budget()
        if not most:
            return  # every process is busy and a message is held for the next one
        queues = list(self.__dict__["_taskplane_groups"][0])
        if self._taskplane_acks.outside(queues):
            self.flush_acks()  # of a queue no longer consumed: they cannot ride on this fetch
        connection = channel.client.connection
        poll_sent(channel, connection)
        lane = self._taskplane_lane
        lane.sent = lane.next
        if lane.sent == WAIT:
            self.flush_acks()  # a wait may block for a while: acknowledgements do not wait with it
            bells = [group[2] for group in groups]  # one per queue
            connection.send_command("BRPOP", *bells, poll_timeout(channel) if timeout is None else timeout or 1)
            return
        connection.send_command(*self._fetch_command(groups, most, self._taskplane_acks.ride(queues)))

    def _budget(self, reserved: int = 0) -> int:
        """How many messages the next fetch takes (0: none): what the free processes take, less ``reserved``
        (taken by fetches under way) and the held messages handed over now, and one message more to hold for
        the next free process (its fetch then is not on the way of that task: see :meth:`_hold`)."""
        channel: Any = self
        free = int(channel.qos.can_consume_max_estimate() or 0) if channel.qos.prefetch_count else FETCH_MAX
        free -= reserved
        free -= self._hand_over_held(max(free, 0))
        return max(0, min(free, FETCH_MAX)) + (1 if self._looks_ahead() else 0)

    def _fetch_command(self, groups: list[list[str]], most: int, acks: list[Any]) -> tuple[Any, ...]:
        """The ``fetch.lua`` command taking up to ``most`` messages from the queues of ``groups`` (see
        :meth:`_groups`) and acknowledging ``acks`` (:meth:`PendingAcks.ride`)."""
        self._load_fetch()
        args: list[Any] = [time.time(), len(groups), len(groups[0]) - 4, most, *acks]
        return script_command("fetch", [name for group in groups for name in group], args + self._start_arguments())

    def _start_arguments(self) -> list[Any]:
        """The fetch script's arguments for starting the tasks it takes (see the module)."""
        cached: list[Any] | None = self.__dict__.get("_taskplane_start")
        if cached is None:
            options = self._start_options()
            if options is None:
                cached = [""]
            else:
                worker, skipped, retention = options
                cached = start_arguments(self._keys, worker, retention, self._payload_limit(), skipped)
            self.__dict__["_taskplane_start"] = cached
        return cached

    def acknowledge(self, queue: str, delivery_tag: str) -> None:
        """Acknowledge ``delivery_tag`` (taken from ``queue``) with the next fetch, or at once when no fetch
        follows soon (a wait is under way, this channel consumes nothing, or the server refused the last fetch).

        Raises:
            redis.ConnectionError: sending at once failed (the acknowledgement is kept for the next try).
        """
        self._taskplane_acks.add(queue, delivery_tag)
        channel: Any = self
        waiting = poll_in_flight(channel) and self._taskplane_lane.sent == WAIT
        if not channel.active_queues or waiting or self._taskplane_pause.wait:
            self.flush_acks()

    def flush_acks(self) -> None:
        """Send the acknowledgements kept for the next fetch now (:meth:`PendingAcks.flush`)."""
        channel: Any = self
        if self._taskplane_acks.kept:
            with channel.conn_or_acquire() as client:
                self._taskplane_acks.flush(client, self._keys, channel.connection_errors)

    def _load_fetch(self) -> None:
        """Load the fetch script on this channel's server once (its reply is read by the poller, which
        cannot send it again as EVAL: a server that forgot it answers NOSCRIPT, and it is loaded again)."""
        if self._taskplane_fetch_sha is None:
            channel: Any = self
            with channel.conn_or_acquire() as client:
                self._taskplane_fetch_sha = load_script(client, "fetch")

    def _brpop_read(self, **options: Any) -> bool:
        channel: Any = self
        client = channel.client
        try:
            return self._read_lane(
                self._taskplane_lane,
                lambda command: client.parse_response(client.connection, command, **options),
                client.connection.disconnect,
            )
        finally:
            poll_done(channel)

    def _read_lane(self, lane: Lane, parse: Callable[[str], Any], disconnect: Callable[[], Any]) -> bool:
        """Read the reply to the command under way on ``lane`` (``parse`` reads it as the reply to the named
        command; ``disconnect`` drops the lane's connection) and hand what a fetch took to the consumer.

        Raises:
            Empty: nothing was delivered (a wait ended, the queues were empty, a fetch was refused).
            Any of the channel's connection errors: the connection broke (the acknowledgements it carried,
                and the messages it took if it ran, return by their leases).
        """
        channel: Any = self
        sent = lane.sent
        try:
            reply = parse("BRPOP" if sent == WAIT else RUN_COMMAND)
        except NoScriptError:  # the server restarted and lost its scripts: load it again, then fetch
            self._taskplane_fetch_sha = None
            lane.next, lane.loaded = FETCH, False
            lane.acks.refused()
            raise Empty() from None
        except OutOfMemoryError as exc:  # refused whole (nothing taken): wait, on the same connection
            lane.next = FETCH
            lane.acks.refused()
            self._refused(exc)
            raise Empty() from None
        except channel.connection_errors:
            disconnect()
            lane.next = FETCH
            lane.acks.landed()  # lost with the reply or not: their leases return them
            raise
        if self._taskplane_pause.reset():
            kombu_redis.logger.warning("Redis takes writes again: the worker fetches")
        if sent == WAIT:
            lane.next = FETCH  # a bell rang or the wait timed out: look again
            raise Empty()
        lane.acks.landed()
        if not reply:
            lane.next = WAIT
            raise Empty()
        if not self._deliver_reply(reply):
            raise Empty()
        return True

    def _deliver_reply(self, reply: list[Any]) -> bool:
        """Hand the messages of a fetch's reply to the consumer (those over the free processes are held);
        False if none was delivered."""
        channel: Any = self
        queue = self._keys.queue_of(list_name := bytes_to_str(reply[0]))
        delivered = 0
        for index in range(1, len(reply), 3):
            tag, started = (bytes_to_str(part) if part else None for part in reply[index + 1 : index + 3])
            try:  # strictly: kombu's decoding replaces what is not UTF-8, and the item would change
                item = reply[index].decode() if isinstance(reply[index], bytes) else reply[index]
            except UnicodeDecodeError:
                self._quarantined(queue, reply[index], tag)
                continue
            if tag and not channel.qos.can_consume():
                self._hold(list_name, queue, item, tag, started)
                continue
            delivered += self._take(queue, item, tag, started)
        return bool(delivered)

    def _refused(self, exc: Exception) -> None:
        """The server is full (``maxmemory``, no eviction) and refused the fetch: fetch again after a pause
        that doubles up to 2 s (:data:`REFUSED_PAUSE`), on the same connection (a reconnection would not free
        memory, and it would cut the running tasks off their acknowledgements); what finishes meanwhile is
        acknowledged at once (deleting is allowed on a full server)."""
        if not self._taskplane_pause.wait:
            kombu_redis.logger.warning("Redis refuses writes (%s): the worker waits for memory", exc)
        self._taskplane_pause.step()
        try:
            self.flush_acks()
        except Exception as error:  # what it could not send rides on the next fetch
            kombu_redis.logger.warning("could not acknowledge while Redis is full: %s", error)
        channel: Any = self
        hub = getattr(channel.connection, "taskplane_hub", None)
        if hub is not None:
            hub.call_later(self._taskplane_pause.wait, lambda: None)  # the event loop looks again by then

    def _start_options(self) -> tuple[str, list[str], int] | None:
        """(worker name, task names not to start, record retention in s) if the fetch starts tasks, else None."""
        raise NotImplementedError
