"""Records at run time: a delivery of a task that already succeeded does not run it again."""

from __future__ import annotations

from taskplane.core.protocol import PublishOption
from taskplane.redis.keys import Keys
from tests.apps.core_app import events, mark, tp
from tests.workers import InProcessWorker, wait_for


def test_a_delivery_of_a_task_that_already_succeeded_is_acknowledged_without_running_again(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    worker_in_process(tp)
    handle = mark.enqueue("once")
    assert handle.wait(timeout=20).state == "succeeded"
    # When the same message comes again (as after an acknowledgement lost with its worker), without a new record
    mark.apply_async(("once",), task_id=handle.id, **{PublishOption.REPUBLISH.value: True})
    keys = tp.storage.keys
    client = tp.storage.client
    wait_for(
        lambda: client.llen(Keys().queue("normal")) == 0 and client.hlen(keys.unacked("normal")) == 0,
        20,
        "the duplicate to be taken",
    )
    # Then it was acknowledged without running: the body ran once, the record still says succeeded
    assert [event["tag"] for event in events("mark")] == ["once"]
    assert handle.record().state == "succeeded"
