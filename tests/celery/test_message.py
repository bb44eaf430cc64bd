"""Messages built from a template are the messages Celery's ``as_task_v2`` builds, and the encoder writes
the JSON ``dumps`` would write for them."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import pytest
from celery.utils.saferepr import saferepr
from kombu.utils.json import dumps

from taskplane.celery.message import MessageTemplate, argument_repr, template_for
from tests.apps.core_app import tp

VALUES: list[Any] = [
    [],
    {},
    [1, "a", 2.5, None, True],
    {"a": 1, "b": "x'\"y"},
    ["é", "a\\b", "\n"],
    ["a'b", 'a"b', "tab\t", "\u200b", "ok"],
    {"it's": 1, 2: None, 3.5: False},
    [10**30, float("nan")],
    [[1, [2, [3, [4, [5]]]]]],
    [{"nested": {"deep": [1, 2]}}],
    {1: "not a str key"},
    ["x" * 2000],
    list(range(500)),
    [b"bytes", (1, 2)],
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_argument_repr_is_celerys_saferepr(value: Any) -> None:
    assert argument_repr(value, 1024, 3) == saferepr(value, 1024, maxlevels=3)


@pytest.mark.parametrize("countdown", [None, 60.0])
def test_the_template_builds_what_as_task_v2_builds(countdown: float | None) -> None:
    app = tp.celery
    template = MessageTemplate(app, "t.add", "normal", {"time_limit": 5}, countdown=countdown)
    message, body = template.message("id-1", (1, 2), {"c": 3})
    headers, properties, expected_body, _ = app.amqp.as_task_v2(
        "id-1",
        "t.add",
        (1, 2),
        {"c": 3},
        countdown=countdown,
        reply_to=app.thread_oid,
        time_limit=5,
        ignore_result=None,  # type: ignore[arg-type]  # what send_task passes when the call does not say (Celery 5.7; 5.5 passed False)
    )
    if countdown:  # computed a moment apart
        ours, celerys = (datetime.fromisoformat(h.pop("eta")) for h in (message["headers"], headers))
        assert abs((ours - celerys).total_seconds()) < 1
    assert message["headers"] == headers
    assert {k: message["properties"][k] for k in properties} == properties
    assert body == expected_body


def test_the_encoder_writes_what_dumps_writes_for_the_message() -> None:
    template = MessageTemplate(tp.celery, "t.add", "normal", {}, countdown=30.0)
    text, size = template.encoder.encode("id-2", [1, "two"], {"b": [3]}, 1234)
    encoded = json.loads(text)
    message, _ = template.message("id-2", [1, "two"], {"b": [3]})
    message["headers"]["x-taskplane-eta"] = message["headers"].pop("eta")  # as the transport keeps it
    message["headers"]["x-taskplane-ready-ms"] = 1234
    message["properties"]["delivery_tag"] = encoded["properties"]["delivery_tag"]
    assert encoded == json.loads(dumps(message))
    assert size == len(message["body"])


def test_a_forked_process_builds_its_own_templates() -> None:
    parent = template_for(tp.celery, "t.add", "normal", {})
    assert template_for(tp.celery, "t.add", "normal", {}) is parent  # cached
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its messages name their own origin (process id)
        child = template_for(tp.celery, "t.add", "normal", {})
        os.write(write, str(child.headers["origin"]).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 300).decode() not in ("", parent.headers["origin"])


def test_delivery_tags_are_unique_in_a_process_and_across_a_fork() -> None:
    import os

    from taskplane.celery.message import delivery_tag

    tags = {delivery_tag() for _ in range(10_000)}
    assert len(tags) == 10_000
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a prefix of its own
        os.write(write, delivery_tag().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    os.close(read)
    os.close(write)
    assert child.split(".")[0] != delivery_tag().split(".")[0]
