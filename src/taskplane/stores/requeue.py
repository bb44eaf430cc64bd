"""A dead letter's requeue as it reaches Redis. Into the letter's own queue it is one step (``dead_take.lua``:
the letter leaves exactly when its message enters the queue, one cluster slot). Into another queue the two
are in two slots, so it is two steps: the message (with its record) in the target queue's slot first, then
the letter leaves its own (``dead_remove.lua``). A failure between leaves the message queued and the letter
where it was: requeued again, the task can run twice; it is never lost."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from taskplane.core.errors import NotFoundError
from taskplane.core.topology import DEAD_SUFFIX
from taskplane.redis.keys import BELL_CAP, Keys
from taskplane.redis.scripts import run_script, script_command

log = logging.getLogger("taskplane.dead_letters")


@dataclass(frozen=True)
class Requeue:
    """The dead letter a publish requeues: its dead-letter queue (``<queue>.dead``) and id."""

    dead_queue: str
    letter_id: str

    @classmethod
    def of(cls, header: str) -> Requeue:
        """From a message's :attr:`Header.REQUEUE` (JSON ``[dead queue, letter id]``)."""
        dead_queue, letter_id = json.loads(header)
        return cls(str(dead_queue), str(letter_id))

    def across(self, queue: str) -> bool:
        """True if the message goes to a queue other than the letter's (two steps: see the module)."""
        return self.dead_queue.removesuffix(DEAD_SUFFIX) != queue

    def gone(self) -> NotFoundError:
        """The error for a letter that is no longer there."""
        return NotFoundError(f"dead letter {self.letter_id} is no longer in {self.dead_queue} (requeued or purged)")

    def check(self, client: Any, keys: Keys) -> None:
        """Before a requeue into another queue sends anything: the letter must still be there.

        Raises:
            NotFoundError: it is not.
        """
        if client.zscore(keys.dead_index(self.dead_queue), self.letter_id) is None:
            raise self.gone()

    def take(self, pipe: Any, keys: Keys, queue: str, target: str, payload: str, delay: float) -> None:
        """Queue on ``pipe`` the one step of a requeue into the letter's own ``queue``: the letter leaves, its
        ``payload`` enters ``target`` (a list of the queue, or its delayed set when ``delay`` > 0). The
        step's reply is 0 if the letter was no longer there (then nothing was queued)."""
        script_keys = [
            keys.dead_index(self.dead_queue),
            keys.dead_items(self.dead_queue),
            target,
            keys.bell(queue),
            keys.dead_bytes(self.dead_queue),
        ]
        args = [self.letter_id, payload, "delayed" if delay > 0 else "list", repr(max(delay, 0.0)), BELL_CAP]
        pipe.execute_command(*script_command("dead_take", script_keys, args, source=True))

    def leave(self, client: Any, keys: Keys, queue: str) -> None:
        """The second step of a requeue into another queue (its message is in ``queue`` now): the letter
        leaves its dead-letter queue. If it had left already (requeued or purged meanwhile), the task may run
        twice: said in the log."""
        dead = self.dead_queue
        script_keys = [keys.dead_index(dead), keys.dead_items(dead), keys.dead_bytes(dead)]
        if not run_script(client, "dead_remove", script_keys, [self.letter_id]):
            log.warning(
                "dead letter %s left %s while it was requeued into %s: it may run twice",
                self.letter_id,
                self.dead_queue,
                queue,
            )
