"""A team's own Celery configuration runs on taskplane as Celery would run it: ``task_queues`` and
``task_default_queue`` become taskplane queues, ``task_routes`` (every form Celery's router reads) route tasks
however they are enqueued, settings taskplane owns or has no use for are refused in one line, and settings
from ``config_from_object`` are not shadowed by taskplane's defaults."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kombu import Exchange, Queue

from taskplane import ConfigurationError, Taskplane
from tests.cli_output import error_lines


def app(**overrides: Any) -> Taskplane:
    return Taskplane("routing-tests", queues={"reports": "low"}, redis_url="redis://127.0.0.1:1/0", **overrides)


def by_name(tp: Taskplane, name: str, *args: Any, **kwargs: Any) -> str:
    tp.check_celery_config()
    return tp.queue_for(name, args, kwargs)


def test_their_queues_become_taskplane_queues_at_tier_normal_unless_declared() -> None:
    tp = app()
    tp.celery.conf.task_queues = (Queue("default"), Queue("reports"), Queue("emails", Exchange("emails"), "emails"))
    tp.celery.conf.task_default_queue = "default"
    tp.check_celery_config()
    assert tp.topology.get("default").tier == "normal" and tp.topology.get("emails").tier == "normal"
    assert tp.topology.get("reports").tier == "low"  # declared with a tier: kept
    assert {queue.name for queue in tp.celery.conf.task_queues} == set(tp.topology.names())  # with the tiers
    assert by_name(tp, "proj.tasks.anything") == "default"  # task_default_queue


def test_a_queue_on_a_topic_exchange_is_refused_in_one_line() -> None:
    tp = app()
    tp.celery.conf.task_queues = (Queue("feed", Exchange("feed", type="topic"), routing_key="feed.#"),)
    with pytest.raises(ConfigurationError, match=r"queue 'feed' is bound to a topic exchange; .*give task_routes"):
        tp.check_celery_config()


def test_every_form_of_task_routes_routes_as_celerys_router_does() -> None:
    tp = app()

    def by_tenant(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **rest: Any) -> Any:
        return {"queue": "high"} if kwargs.get("tenant") == "vip" else None

    tp.celery.conf.task_routes = [
        by_tenant,
        {"proj.tasks.build_report": {"queue": "reports"}, "proj.mail.*": "critical"},
        {re.compile(r"proj\.slow\..*"): {"queue": "low"}},
    ]
    assert by_name(tp, "proj.tasks.build_report") == "reports"  # exact name
    assert by_name(tp, "proj.mail.send") == "critical"  # glob, a bare queue name
    assert by_name(tp, "proj.slow.crunch") == "low"  # regular expression
    assert by_name(tp, "proj.tasks.other", tenant="vip") == "high"  # a router function, by the arguments
    assert by_name(tp, "proj.tasks.other") == "normal"  # no route: the default queue


def test_a_route_names_a_queue_taskplane_does_not_know_in_one_line() -> None:
    tp = app()
    tp.celery.conf.task_routes = {"proj.tasks.x": {"queue": "critical-jobs"}}
    with pytest.raises(ConfigurationError) as caught:
        tp.check_celery_config()
    assert "\n" not in str(caught.value) and "unknown queue 'critical-jobs'" in str(caught.value)


def test_a_declared_queue_wins_over_a_route_and_a_queue_given_with_the_call_over_both() -> None:
    tp = app()
    tp.celery.conf.task_routes = {"routing.pinned": {"queue": "reports"}, "routing.routed": {"queue": "reports"}}

    @tp.task(name="routing.pinned", queue="high")
    def pinned() -> None: ...

    assert by_name(tp, "routing.pinned") == "high"
    assert by_name(tp, "routing.routed") == "reports"
    assert tp.celery.routing.queue_for("routing.routed", options={"queue": "low"}) == "low"


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("task_track_started", True, "Celery setting task_track_started is not used by taskplane: remove it"),
        ("task_serializer", "pickle", "task_serializer='pickle' is not supported: taskplane's messages"),
        ("task_acks_late", False, "task_acks_late=False is not supported: a task is acknowledged after it ran"),
        ("worker_state_db", "/var/run/w.db", "worker_state_db is not used by taskplane: remove it: cancellations"),
        ("cassandra_servers", ["x"], "cassandra_servers is not used by taskplane: remove it: results live"),
        ("broker_url", "redis://elsewhere:6379/0", "broker_url='redis://elsewhere:6379/0' is not supported"),
        (
            "broker_transport_options",
            {"visibility_timeout": 3600},
            "broker_transport_options['visibility_timeout']=3600 is taskplane's: set TASKPLANE_LEASE_TIMEOUT",
        ),
    ],
)
def test_a_setting_taskplane_does_not_take_is_refused_in_one_line(setting: str, value: Any, says: str) -> None:
    tp = app()
    tp.celery.conf[setting] = value

    @tp.task(name="routing.nothing")
    def nothing() -> None: ...

    with pytest.raises(ConfigurationError) as caught:
        tp.check_celery_config()
    assert says in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
    with pytest.raises(ConfigurationError, match=re.escape(says)):  # an enqueue refuses too
        nothing.enqueue()


def test_settings_taskplane_owns_are_accepted_with_its_own_values() -> None:
    tp = app()
    tp.celery.conf.update(
        broker_url="redis://127.0.0.1:1/0",
        result_backend="redis://127.0.0.1:1/0",
        task_serializer="json",
        accept_content=["application/json"],
        task_acks_late=True,
        worker_pool="prefork",
        broker_transport_options={"max_connections": 20},
    )
    tp.check_celery_config()
    options = tp.celery.conf.broker_transport_options
    assert options["max_connections"] == 20 and options["queue_order_strategy"] == "priority"


def test_honoured_settings_from_config_from_object_are_not_shadowed(tmp_path: Path, monkeypatch: Any) -> None:
    # Given a celeryconfig module (Celery's loader layer, below taskplane's defaults in Celery's lookup order)
    (tmp_path / "their_celeryconfig.py").write_text(
        "task_default_queue = 'default'\nresult_expires = 120\ntask_time_limit = 42\n"
        "worker_log_format = '%(message)s'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    tp = app()
    tp.celery.config_from_object("their_celeryconfig")
    tp.check_celery_config()
    conf = tp.celery.conf
    assert conf.task_default_queue == "default" and by_name(tp, "proj.x") == "default"
    assert conf.result_expires == 120 and conf.task_time_limit == 42 and conf.worker_log_format == "%(message)s"


def test_a_task_declared_on_a_queue_of_their_task_queues_before_the_app_configures() -> None:
    tp = app()
    tp.celery.conf.task_queues = (Queue("emails"),)

    @tp.celery.task(name="routing.mail", queue="emails")
    def mail() -> None: ...

    assert tp.topology.get("emails").tier == "normal" and by_name(tp, "routing.mail") == "emails"


def test_the_worker_refuses_in_one_line(repo_root: Path, tmp_path: Path) -> None:
    module = tmp_path / "their_app.py"
    module.write_text(
        "from taskplane import Taskplane\ntp = Taskplane('theirs')\ntp.celery.conf.task_track_started = True\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "taskplane", "worker", "-A", "their_app:tp"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(repo_root / "src")},
    )
    assert done.returncode == 1
    errors = error_lines(done.stderr)
    assert len(errors) == 1 and "Celery setting task_track_started is not used by taskplane" in errors[0]


def test_their_worker_settings_are_taskplane_workers_defaults() -> None:
    from taskplane.celery.worker.run import worker_argv

    tp = app()
    tp.celery.conf.update(worker_concurrency=3, worker_prefetch_multiplier=2, worker_max_tasks_per_child=50)
    tp.check_celery_config()
    team = tp.celery.team_settings

    def flag(argv: list[str], name: str) -> str:
        return argv[argv.index(name) + 1]

    theirs = worker_argv(tp.profiles, tp.topology, tp.settings, team=team)
    assert [flag(theirs, f) for f in ("--concurrency", "--prefetch-multiplier", "--max-tasks-per-child")] == [
        "3",
        "2",
        "50",
    ]
    given = worker_argv(tp.profiles, tp.topology, tp.settings, concurrency=5, profile="low", team=team)
    assert flag(given, "--concurrency") == "5" and flag(given, "--prefetch-multiplier") == "4"  # -c, the profile's


def test_a_task_in_one_of_their_queues_is_found_by_id_before_the_app_configures(redis_url: str) -> None:
    # Given a record of a task sent to a queue only their task_queues names (records live per queue)
    writer = Taskplane("records-tests", redis_url=redis_url)
    writer.celery.conf.task_queues = (Queue("emails"),)
    writer.check_celery_config()
    writer.stores.records.write("mail-1", "proj.tasks.mail", "emails", "queued")
    # When another process of the same app, not configured yet, looks it up by id alone
    reader = Taskplane("records-tests", redis_url=redis_url)
    reader.celery.conf.task_queues = (Queue("emails"),)
    record = reader.status("mail-1")
    # Then it is found in that queue
    assert record is not None and (record.queue, record.state) == ("emails", "queued")
