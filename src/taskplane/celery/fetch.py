"""Lossless fetch for kombu's Redis channel: a message leaves its queue only in the same atomic step that
puts it in flight under a lease (``redis/lua/fetch.lua``), never by a bare BRPOP.

kombu's consumer loop sends one command on the channel's connection and calls ``_brpop_read`` when the
reply arrives. Here that command alternates between two kinds:

- ``fetch``: the script first acknowledges the deliveries the worker finished since the last fetch,
  then takes the next messages (as many as the prefetch allows, from the first non-empty list in
  kombu's order of tiers and priority steps), writes them to the unacked hash and the lease index, and
  returns them. While messages keep coming, the next command is another fetch.
- ``wait``: when the queues were empty, a BRPOP on the queues' bell lists blocks until a publisher
  rings (every taskplane publish, delayed move and requeue does) or the poll timeout passes; either way
  the next command is a fetch. A message put in a queue without a bell (a plain LPUSH) waits at most
  one poll timeout.

Nothing is popped from a queue by a command whose reply could be lost: a kill, a partition or a server
crash after the script leaves the message in flight, and the lease returns it. Items are read as bytes and
decoded strictly: one that is not UTF-8 text is dead-lettered with its bytes (kombu would replace them).

The fetch also starts the tasks it takes (``fetch.lua`` does what ``run_start.lua`` does in a task's
process: the cancelled and already-done checks, the delivery count, the record written as started) and
hands its verdict to the task's process in the :attr:`Header.STARTED` header, so that a task's process
makes no round trip before its body. Not started here (their process starts them, as before): tasks
with a rate limit (their slot is keyed by their arguments), messages with an ETA or an expiry (Celery's
main process may hold or drop them), and every message when signing is on (nothing is written for a
message before its signature is verified).

The fetch also takes one message more than the free processes need, held for the next process that frees
(:mod:`taskplane.celery.lookahead`). Acknowledgements ride on the next fetch (no round trip of their own,
and the worker's main process does not block on them) unless a wait is under way; then, and when the channel
closes, they are sent at once. An acknowledgement lost with its process leaves a delivery whose lease
returns it: the task's record says it finished, and the start script refuses to run it again.
"""

from __future__ import annotations

import time
from typing import Any

from kombu.transport.virtual import Empty
from kombu.utils.encoding import bytes_to_str
from redis.exceptions import NoScriptError

from taskplane.celery.lookahead import Lookahead
from taskplane.celery.validation import parse_item, problem_with
from taskplane.compat import consumed_queues, deliver, poll_done, poll_in_flight, poll_sent, poll_timeout
from taskplane.core.protocol import Header
from taskplane.core.signing import verify
from taskplane.redis.keys import Keys
from taskplane.redis.scripts import RUN_COMMAND, load_script, script_command
from taskplane.stores.record_model import INDEXED_STATES

FETCH = "fetch"
WAIT = "wait"
#: The most messages one fetch takes (each also bounded by the free prefetch slots).
FETCH_MAX = 16


def start_arguments(keys: Keys, worker: str, retention: int, payload_limit: int, skipped: list[str]) -> list[Any]:
    """``fetch.lua``'s arguments for starting the tasks it takes, after the acknowledgements (see the script):
    key names around a queue's name (each task's keys are in the slot of its own queue), the retention, the
    payload limit, the indexed states and the names of tasks it must not start."""
    return [
        worker,
        *keys.halves("record", ""),
        *keys.halves("cancel", ""),
        *keys.halves("events", ""),
        *keys.halves("index_name", ""),
        *keys.halves("index_queue"),
        *keys.halves("index_state", ""),
        retention,
        payload_limit,
        len(INDEXED_STATES),
        *INDEXED_STATES,
        *skipped,
    ]


class LosslessFetch(Lookahead):
    """Mixin for :class:`taskplane.celery.transport.Channel` (needs kombu's Redis channel under it)."""

    _taskplane_next: str = FETCH
    _taskplane_sent: str = FETCH
    _taskplane_fetch_sha: str | None = None
    #: Tags the fetch script put in flight that kombu's QoS has not recorded yet.
    _taskplane_fetched: set[str]
    #: Finished deliveries to acknowledge with the next fetch, and those the fetch under way carries.
    _taskplane_acks: list[str]
    _taskplane_acks_sent: list[str]

    def _take_lists(self) -> list[str]:
        """The lists to take from: the active queues in tier order, each by its priority steps (a message's
        priority orders it within its queue, never ahead of a higher tier's)."""
        channel: Any = self
        queues = tuple(consumed_queues(channel))
        cached = self.__dict__.get("_taskplane_lists")
        if cached is None or cached[0] != queues:
            lists = [channel._q_for_pri(queue, pri) for queue in queues for pri in channel.priority_steps]
            bells = [self._keys.bell(queue) for queue in queues]
            quarantines = [self._keys.quarantine(queue) for queue in queues]
            cached = self.__dict__["_taskplane_lists"] = (queues, lists, bells, quarantines)
        return list(cached[1])

    def _bells(self) -> list[str]:
        """The bells of the queues of the last :meth:`_take_lists`, one per queue."""
        return list(self.__dict__["_taskplane_lists"][2])

    def _queue_of(self, list_name: str) -> str:
        return self._keys.queue_of(str(list_name))

    def _brpop_start(self, timeout: float | None = None) -> None:
        channel: Any = self
        lists = self._take_lists()
        if not lists:
            return
        free = int(channel.qos.can_consume_max_estimate() or 0) if channel.qos.prefetch_count else FETCH_MAX
        free -= self._hand_over_held(free)
        # What the free processes take now, and one message more to hold for the next free process
        # (its fetch then is not on the way of that task: see _hold)
        most = max(0, min(free, FETCH_MAX)) + (1 if self._looks_ahead() else 0)
        if not most:
            return  # every process is busy and a message is held for the next one
        connection = channel.client.connection
        poll_sent(channel, connection)
        self._taskplane_sent = self._taskplane_next
        if self._taskplane_sent == WAIT:
            self.flush_acks()  # a wait may block for a while: acknowledgements do not wait with it
            connection.send_command("BRPOP", *self._bells(), poll_timeout(channel) if timeout is None else timeout or 1)
            return
        bells = self._bells()
        start_args = self._start_arguments()
        quarantines = list(self.__dict__["_taskplane_lists"][3])
        script_keys = [channel.unacked_key, channel.unacked_index_key, *lists, *bells, *quarantines]
        acks, self._taskplane_acks = self._taskplane_acks, []
        self._taskplane_acks_sent = acks
        self._load_fetch()
        args = [time.time(), len(lists), most, len(bells), len(acks), *acks, *start_args]
        connection.send_command(*script_command("fetch", script_keys, args))

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

    def acknowledge(self, delivery_tag: str) -> None:
        """Acknowledge ``delivery_tag`` with the next fetch, or at once when no fetch follows soon (a wait
        is under way, or this channel consumes nothing).

        Raises:
            redis.ConnectionError: sending at once failed (the acknowledgement is kept for the next try).
        """
        self._taskplane_acks.append(delivery_tag)
        channel: Any = self
        if not channel.active_queues or (poll_in_flight(channel) and self._taskplane_sent == WAIT):
            self.flush_acks()

    def flush_acks(self) -> None:
        """Send the acknowledgements kept for the next fetch now (kombu's two commands, not atomic: a lease
        entry whose message is gone is dropped by the restore)."""
        acks, self._taskplane_acks = self._taskplane_acks, []
        if not acks:
            return
        channel: Any = self
        try:
            with channel.conn_or_acquire() as client:
                pipe = client.pipeline(transaction=False)
                pipe.hdel(channel.unacked_key, *acks).zrem(channel.unacked_index_key, *acks).execute()
        except channel.connection_errors:
            self._taskplane_acks = acks + self._taskplane_acks
            raise

    def _load_fetch(self) -> None:
        """Load the fetch script on this channel's server once (its reply is read by the poller, which
        cannot send it again as EVAL: a server that forgot it answers NOSCRIPT, and it is loaded again)."""
        if self._taskplane_fetch_sha is None:
            channel: Any = self
            with channel.conn_or_acquire() as client:
                self._taskplane_fetch_sha = load_script(client, "fetch")

    def _brpop_read(self, **options: Any) -> bool:
        channel: Any = self
        sent = self._taskplane_sent
        try:
            try:
                reply = channel.client.parse_response(
                    channel.client.connection, "BRPOP" if sent == WAIT else RUN_COMMAND, **options
                )
            except NoScriptError:  # the server restarted and lost its scripts: load it again, then fetch
                self._taskplane_fetch_sha = None
                self._taskplane_next = FETCH
                self._taskplane_acks = self._taskplane_acks_sent + self._taskplane_acks
                self._taskplane_acks_sent = []
                raise Empty() from None
            except channel.connection_errors:
                channel.client.connection.disconnect()
                self._taskplane_next = FETCH
                self._taskplane_acks_sent = []  # lost with the reply or not: their leases return them
                raise
            if sent == WAIT:
                self._taskplane_next = FETCH  # a bell rang or the wait timed out: look again
                raise Empty()
            self._taskplane_acks_sent = []
            if not reply:
                self._taskplane_next = WAIT
                raise Empty()
            queue = self._queue_of(list_name := bytes_to_str(reply[0]))
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
            if not delivered:
                raise Empty()
            return True
        finally:
            poll_done(channel)

    def _take(self, queue: str, item: str, tag: str | None, started: str | None) -> bool:
        """Hand one fetched item to the consumer with what the fetch did to start it (``started``: see
        :attr:`Header.STARTED`; None: not started); False if it was dead-lettered instead."""
        channel: Any = self
        if not tag:
            self._quarantined(queue, item)
            return False
        message, problem = parse_item(item, len(item), self._payload_limit())
        if message is None:
            self._invalid(queue, item, {}, tag, problem or "unreadable")
            return False
        keys = self._signing_keys()
        priority = message["properties"].get("priority")
        if keys and not verify(message["body"], message.get("headers") or {}, keys, queue, priority):
            self._forged(queue, item, message, tag)
            return False
        problem = problem or problem_with(message)
        if problem is not None:
            self._invalid(queue, item, message, tag, problem)
            return False
        if self._deferred(queue, message, tag):
            return False
        headers = message.get("headers")
        if started:
            if headers is None:
                headers = message["headers"] = {}
            headers[Header.STARTED.value] = started
        elif headers:
            headers.pop(Header.STARTED.value, None)  # only this channel says what the fetch did
        self._taskplane_fetched.add(tag)  # in flight already: QoS writes nothing
        try:
            deliver(channel, message, queue)
        except channel.connection_errors:
            raise
        except Exception as exc:  # whatever else a message can do to Celery, it must not stop the consumer
            self._taskplane_fetched.discard(tag)
            self._invalid(queue, item, message, tag, f"{type(exc).__name__}: {exc}"[:500])
            return False
        return True

    def _quarantined(self, queue: str, item: str | bytes, tag: str | None = None) -> None:
        """A non-message the fetch set aside, or an item that is not UTF-8 (in flight under ``tag``)."""
        raise NotImplementedError

    def _payload_limit(self) -> int:
        """The largest message (bytes) a worker accepts (0: no limit)."""
        raise NotImplementedError

    def _start_options(self) -> tuple[str, list[str], int] | None:
        """(worker name, task names not to start, record retention in s) if the fetch starts tasks, else None."""
        raise NotImplementedError

    def _signing_keys(self) -> list[str]:
        """The keys a message must be signed with (none: signing is off)."""
        raise NotImplementedError

    def _invalid(self, queue: str, item: str, message: dict[str, Any], tag: str, problem: str) -> None:
        """A message in flight that is not a valid task message (the channel dead-letters it)."""
        raise NotImplementedError

    def _deferred(self, queue: str, message: dict[str, Any], tag: str) -> bool:
        """True if a message due later went to the delayed store instead."""
        raise NotImplementedError

    def _forged(self, queue: str, item: str, message: dict[str, Any], tag: str) -> None:
        """A message in flight whose signature does not verify (dead-lettered by the channel)."""
        raise NotImplementedError
