"""The key prefix covers the queue lists: two apps with different prefixes on one Redis never see each other's
messages, a plain Celery client reaches a taskplane queue with the settings docs/migration.md gives, and
messages queued under the old unprefixed list names, or in the lists kombu names for a priority, are adopted."""

from __future__ import annotations

import json

import redis
from celery import Celery

from taskplane.redis.keys import Keys
from tests.workers import InProcessWorker, StartWorker, wait_for


def test_two_apps_on_one_redis_do_not_meet(redis_url: str, start_worker: StartWorker) -> None:
    from tests.apps.prefix_apps import RAN, one, two

    handles = [one.enqueue("p.echo", [i]) for i in range(5)] + [two.enqueue("p.echo", [i]) for i in range(5, 10)]
    start_worker(app="tests.apps.prefix_apps:one")
    start_worker(app="tests.apps.prefix_apps:two")
    wait_for(lambda: all(h.record().done for h in handles), 30, "every task to run")
    ran = [json.loads(item) for item in redis.Redis.from_url(redis_url).lrange(RAN, 0, -1)]
    assert sorted((r["app"], r["index"]) for r in ran) == [("one", i) for i in range(5)] + [
        ("two", i) for i in range(5, 10)
    ]
    assert all(h.record().state == "succeeded" for h in handles)
    assert not any(one.dead_letters.counts().values()) and not any(two.dead_letters.counts().values())
    assert Keys("one:").queue("normal") != Keys("two:").queue("normal")


def test_a_plain_celery_client_reaches_a_taskplane_queue_and_its_result_with_global_keyprefix(
    redis_url: str, worker_in_process: InProcessWorker
) -> None:
    from tests.apps.core_app import tp

    worker_in_process(tp)
    plain = Celery("plain", broker=redis_url, backend=redis_url, set_as_current=False)
    plain.conf.broker_transport_options = {"global_keyprefix": "taskplane:"}  # the two settings
    plain.conf.result_backend_transport_options = {"global_keyprefix": "taskplane:"}
    result = plain.send_task("t.add", (2, 3), queue="normal")
    assert result.get(timeout=30) == 5
    assert tp.handle(result.id).record().state == "succeeded"


def test_a_plain_celery_clients_priority_message_is_adopted_when_a_worker_starts(
    redis_url: str, worker_in_process: InProcessWorker
) -> None:
    from tests.apps.core_app import tp

    # Given a plain Celery client's message with a priority, in the list kombu names for it (taskplane keeps
    # a queue's priority lists under the queue's hash tag, so that they share its cluster slot)
    plain = Celery("plain", broker=redis_url, backend=redis_url, set_as_current=False)
    plain.conf.broker_transport_options = {"global_keyprefix": "taskplane:", "priority_steps": list(range(10))}
    plain.conf.result_backend_transport_options = {"global_keyprefix": "taskplane:"}
    result = plain.send_task("t.add", (2, 3), queue="normal", priority=4)
    client = tp.storage.client
    kombu_list = tp.storage.keys.kombu_list("normal", 4)
    assert client.llen(kombu_list) == 1 and kombu_list != tp.storage.keys.queue("normal", 4)
    # When a worker starts, then it is adopted into the queue's list for that priority and runs
    worker_in_process(tp)
    assert result.get(timeout=30) == 5
    assert client.llen(kombu_list) == 0


def test_messages_under_unprefixed_list_names_are_adopted_in_order(redis_url: str) -> None:
    from tests.apps.core_app import add, tp

    client = tp.storage.client
    first, second = add.enqueue(1, 1), add.enqueue(2, 2)
    # As an older taskplane left them: the same messages under the bare list name
    raw = client.lrange(tp.storage.keys.queue("normal"), 0, -1)
    client.delete(tp.storage.keys.queue("normal"))
    client.rpush("normal", *raw)
    third = add.enqueue(3, 3)
    assert tp.stores.queues.adopt_unprefixed(["normal"]) == 2
    assert client.llen("normal") == 0
    order = [
        json.loads(item)["headers"]["id"] for item in reversed(client.lrange(tp.storage.keys.queue("normal"), 0, -1))
    ]
    assert order == [third.id, first.id, second.id]  # the adopted ones behind the queue's, in their order


def test_a_long_list_is_adopted_in_batches_in_order_each_step_in_one_slot(redis_url: str) -> None:
    from redis.crc import key_slot

    from taskplane.stores.queues import ADOPT_BATCH
    from tests.apps.core_app import tp
    from tests.redis.test_key_slots import Monitor, slots_of_steps

    client, keys = tp.storage.client, tp.storage.keys
    count = ADOPT_BATCH * 2 + 500
    client.lpush("normal", *[f"m{i}" for i in range(count)])  # pushed oldest first, as a producer does
    client.lpush(keys.queue("normal"), "queued-before")
    monitor = Monitor(redis_url)
    try:
        assert tp.stores.queues.adopt_unprefixed(["normal"]) == count
        assert tp.stores.queues.adopt_unprefixed(["normal"]) == 0  # a second adoption finds nothing to move
        monitor.caught_up(tp.storage.client)
    finally:
        monitor.stop()
    taken = list(reversed(client.lrange(keys.queue("normal"), 0, -1)))  # in the order workers take them
    assert taken == ["queued-before", *[f"m{i}" for i in range(count)]]  # each once, in order, behind the queue's
    assert client.llen(keys.bell("normal")) > 0
    steps = slots_of_steps(monitor.lines)
    assert steps and all(len(step) == 1 for step in steps), steps
    assert key_slot(b"normal") != key_slot(keys.queue("normal").encode())  # the source is in another slot
