"""With signing on, the worker runs what taskplane signed and dead-letters a forged message unrun."""

from __future__ import annotations

import base64
import json

from taskplane.redis.keys import Keys
from tests.apps.signed_app import add, tp
from tests.workers import InProcessWorker, wait_for


def forged(task: str, task_id: str, signature: str | None) -> str:
    headers: dict[str, object] = {"lang": "py", "task": task, "id": task_id, "retries": 0, "root_id": task_id}
    if signature is not None:
        headers["x-taskplane-signature"] = signature
    return json.dumps(
        {
            "body": base64.b64encode(json.dumps([[2, 2], {}, {}]).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                "body_encoding": "base64",
                "delivery_tag": f"tag-{task_id}",
                "delivery_info": {"exchange": "normal", "routing_key": "normal"},
                "priority": 0,
            },
        }
    )


def test_signed_tasks_run_and_forged_messages_are_dead_lettered_unrun(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    worker_in_process(tp)
    client = tp.storage.client
    # A message pushed straight into the queue, unsigned, and one signed with a key the app does not hold
    client.lpush(Keys().queue("normal"), forged("s.add", "unsigned-1", None))
    client.lpush(Keys().queue("normal"), forged("celery.starmap", "wrong-key-1", "v1:" + "0" * 64))
    # A task enqueued through taskplane still runs
    assert add.enqueue(1, 2).result(timeout=20) == 3
    letters = wait_for(lambda: len(tp.dead_letters.find()) >= 2 and tp.dead_letters.find(), 20, "2 dead letters")
    assert sorted(letter.reason for letter in letters) == ["forged", "forged"]
    assert all(letter.name == "" and letter.raw for letter in letters)
    assert any("'celery.starmap'" in letter.exception_message for letter in letters)
    # Neither ran: no record was made for their ids, nothing stayed in flight
    assert tp.status("unsigned-1") is None and tp.status("wrong-key-1") is None
    assert client.hlen(tp.storage.keys.unacked("normal")) == 0


def test_a_plain_celery_client_signs_through_taskplanes_transport(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    from celery import Celery

    # The settings docs/reliability.md gives a Celery client of a signing app
    client = Celery(
        "plain",
        broker=redis_url,
        broker_transport="taskplane.celery.transport:Transport",
        broker_transport_options={"taskplane_prefix": "taskplane:", "taskplane_signing_keys": ["new-key"]},
        set_as_current=False,
    )
    worker_in_process(tp)
    sent = client.send_task("s.add", [20, 22], queue="normal")
    record = tp.handle(sent.id).wait(timeout=20)
    assert record.state == "succeeded" and record.result() == 42
    assert tp.dead_letters.find() == []


def test_a_signed_message_moved_to_another_queue_or_priority_is_forged(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    client = tp.storage.client
    # Given two signed messages taken out of their queue before a worker ran them
    moved, raised = add.enqueue(1, 1), add.enqueue(2, 2)
    items = [client.rpop(Keys().queue("normal")) for _ in range(2)]
    by_id = {json.loads(item)["headers"]["id"]: json.loads(item) for item in items}
    # When one is pushed into the critical queue, and the other's priority is raised
    client.lpush(Keys().queue("critical"), json.dumps(by_id[moved.id]))
    by_id[raised.id]["properties"]["priority"] = 9
    client.lpush(Keys().queue("normal"), json.dumps(by_id[raised.id]))
    worker_in_process(tp, queues="critical,normal")
    # Then neither runs: both are dead-lettered as forged
    letters = wait_for(lambda: len(tp.dead_letters.find()) >= 2 and tp.dead_letters.find(), 20, "2 dead letters")
    assert sorted(letter.reason for letter in letters) == ["forged", "forged"]
    assert add.enqueue(3, 3).result(timeout=20) == 6  # one left where it was signed for runs
