"""taskplane's publishing channels: one kept Redis connection per channel, a lost connection or a server
that forgot its scripts costs one retry and never a lost or doubled message."""

from __future__ import annotations

import json
import threading

import redis

from taskplane.redis.keys import Keys
from tests.apps.core_app import add


def queued_ids(client: redis.Redis, queue: str = "normal") -> list[str]:
    return [json.loads(raw)["headers"]["id"] for raw in client.lrange(Keys().queue(queue), 0, -1)]


def test_enqueues_from_one_thread_open_no_new_connection(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    add.enqueue(0, 0)
    opened = int(client.info("stats")["total_connections_received"])
    for i in range(50):
        add.enqueue(i, i)
    assert int(client.info("stats")["total_connections_received"]) == opened
    assert len(queued_ids(client)) == 51


def test_a_killed_connection_costs_a_retry_not_a_message(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    add.enqueue(0, 0)
    # Kill the connection that published (its last command the publish script); not the app's other pooled
    # connections, which a later test's remote control call would find dead, as in plain Celery
    publishing = [entry["id"] for entry in client.client_list() if entry["cmd"] in ("evalsha", "eval")]
    assert publishing
    for client_id in publishing:
        client.client_kill_filter(_id=client_id)
    opened = int(client.info("stats")["total_connections_received"])
    handle = add.enqueue(1, 1)
    assert int(client.info("stats")["total_connections_received"]) > opened  # it met the killed one
    assert queued_ids(client).count(handle.id) == 1
    assert handle.state == "queued"


def test_a_server_that_forgot_its_scripts_loads_them_again(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    add.enqueue(0, 0)
    client.script_flush()
    handle = add.enqueue(1, 1)
    assert queued_ids(client).count(handle.id) == 1


def test_threads_publishing_at_once_each_get_their_own_reply(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    ids: list[str] = []
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(100):
                ids.append(add.enqueue(i, i).id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(queued_ids(client)) == sorted(ids) and len(set(ids)) == 400
