"""Calls a cluster channel makes off the worker's main loop (taskplane.celery.aside): one at a time per name,
waited for as long as the caller says, errors logged and not raised."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from taskplane.celery.aside import Aside


def test_a_call_runs_in_a_thread_of_its_own_and_is_waited_for_up_to_wait() -> None:
    aside, ran = Aside(), threading.Event()
    threads: list[str] = []

    def call() -> None:
        threads.append(threading.current_thread().name)
        ran.set()

    assert aside.run("sweep:q", call, wait=5.0)
    assert ran.is_set() and threads == ["taskplane-sweep:q"]


def test_a_second_call_under_a_name_is_dropped_while_the_first_runs() -> None:
    aside, release, calls = Aside(), threading.Event(), []

    def slow() -> None:
        calls.append("slow")
        release.wait(10)

    started = time.monotonic()
    assert aside.run("open:q", slow, wait=0.1)
    assert time.monotonic() - started < 5  # the caller waited 0.1 s, not for the call
    assert not aside.run("open:q", lambda: calls.append("second"))
    assert aside.run("open:other", lambda: calls.append("other"), wait=5.0)  # another name runs at once
    release.set()
    deadline = time.monotonic() + 5
    while not aside.run("open:q", lambda: calls.append("third"), wait=5.0):  # once the first ended
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert calls == ["slow", "other", "third"]


def test_an_error_is_logged_and_the_name_is_free_again(caplog: pytest.LogCaptureFixture) -> None:
    aside = Aside()

    def broken() -> None:
        raise ConnectionError("node gone")

    with caplog.at_level(logging.WARNING, logger="taskplane.worker"):
        assert aside.run("sweep:q", broken, wait=5.0)
    assert "sweep:q failed (ConnectionError: node gone)" in caplog.text
    done = threading.Event()
    assert aside.run("sweep:q", done.set, wait=5.0) and done.is_set()
