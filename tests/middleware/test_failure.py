"""The failure path: unknown tasks and malformed messages are dead-lettered and the worker keeps running."""

from __future__ import annotations

import base64
import json

from taskplane.redis.keys import Keys
from tests.apps.core_app import add, tp
from tests.workers import InProcessWorker, wait_for


def test_unknown_tasks_and_malformed_messages_are_dead_lettered_and_the_worker_keeps_running(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    worker_in_process(tp)
    client = tp.storage.client
    # An unknown task name, sent through Celery directly
    unknown_id = tp.celery.send_task("no.such.task", [1], queue="normal").id
    # Items that are not kombu messages at all
    client.lpush(Keys().queue("normal"), "this is not json")
    client.lpush(Keys().queue("normal"), json.dumps({"hello": "world"}))
    # A kombu envelope whose body is not valid JSON
    envelope = {
        "body": base64.b64encode(b"{not json").decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"id": "bad-body", "task": "t.add"},
        "properties": {
            "body_encoding": "base64",
            "delivery_tag": "tag-1",
            "delivery_info": {"exchange": "normal", "routing_key": "normal"},
            "priority": 0,
        },
    }
    client.lpush(Keys().queue("normal"), json.dumps(envelope))
    # Then the worker still runs a real task
    assert add.enqueue(1, 2).result(timeout=20) == 3
    letters = wait_for(lambda: len(tp.dead_letters.find()) >= 4 and tp.dead_letters.find(), 20, "4 dead letters")
    reasons = sorted(letter.reason for letter in letters)
    assert reasons == ["malformed", "malformed", "malformed", "unknown_task"], reasons
    unknown = tp.dead_letters.get(unknown_id)
    assert unknown is not None and unknown.name == "no.such.task" and unknown.raw
