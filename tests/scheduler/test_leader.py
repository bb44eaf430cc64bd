"""The scheduler's lease, fencing, missed slots, pausing and firing by hand, stepped in-process on real Redis."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.apps.sched_app import tp


def wait_for_next_slot(every: float) -> None:
    """Sleep until just after the next multiple of ``every`` seconds (Redis's clock is this machine's)."""
    now = time.time()
    time.sleep((int(now // every) + 1) * every - now + 0.05)


def fires(name: str) -> list[dict[str, Any]]:
    return list(reversed(tp.schedules.fires(name)))


def queued_tick_ids() -> set[str]:
    return {record.id for record in tp.tasks(name="s.tick", limit=1000).records}


def test_one_scheduler_leads_and_the_lease_names_its_term(redis_url: str) -> None:
    first, second = tp.scheduler(owner="a"), tp.scheduler(owner="b")
    first.step()
    second.step()
    assert first.is_leader and not second.is_leader
    leader = tp.schedules.leader()
    assert leader is not None and (leader.owner, leader.epoch) == ("a", 1)
    assert 0 < leader.expires_in_ms <= tp.settings.scheduler_lease_ttl * 1000
    first.step()  # renewing keeps the same term
    leader = tp.schedules.leader()
    assert first.epoch == 1 and leader is not None and leader.epoch == 1


def test_a_leader_whose_lease_moved_on_cannot_fire(redis_url: str) -> None:
    old, new = tp.scheduler(owner="old"), tp.scheduler(owner="new")
    old.step()  # first sight: every schedule gets its baseline slot
    assert old.is_leader
    # The old leader stalls past its lease; the lease expires and another scheduler takes a new term.
    tp.storage.client.delete(tp.storage.keys.scheduler_lease())
    new.step()
    assert new.is_leader and new.epoch == 2
    wait_for_next_slot(1)
    # The stalled leader wakes up still believing it leads, and tries to fire a due slot: fenced off.
    schedule = tp.schedules.get("every-second")
    now = int(time.time() * 1000)
    assert old._due(schedule, now) == -1
    assert queued_tick_ids() == set() and fires("every-second") == []
    old.step()
    assert not old.is_leader
    new.step()
    [fired] = fires("every-second")
    assert fired["epoch"] == 2 and fired["kind"] == "fire"
    # (on an even second the two-second schedule fires too)
    assert queued_tick_ids() == {entry["task_id"] for entry in fires("every-second") + fires("skipper")}


def test_release_hands_the_lease_over_at_once(redis_url: str) -> None:
    first, second = tp.scheduler(owner="a"), tp.scheduler(owner="b")
    first.step()
    first.release()
    assert tp.schedules.leader() is None
    second.step()
    assert second.is_leader and second.epoch == 2


def test_missed_slots_fire_once_late_or_are_skipped_per_schedule(redis_url: str) -> None:
    scheduler = tp.scheduler(owner="a", grace=1.5)
    wait_for_next_slot(2)
    scheduler.step()  # baseline, just after an even second
    wait_for_next_slot(1)
    scheduler.step()  # the every-second slot, on time
    wait_for_next_slot(1)
    scheduler.step()  # both schedules' slots, on time
    assert [entry["kind"] for entry in fires("every-second")] == ["fire", "fire"]
    assert [entry["kind"] for entry in fires("skipper")] == ["fire"]
    # No scheduler steps for a while: several slots of both schedules pass unfired.
    time.sleep(4.5)
    scheduler.step()
    every_second = fires("every-second")
    skipper = fires("skipper")
    assert [entry["kind"] for entry in every_second] == ["fire", "fire", "late"]  # four missed slots, fired once
    assert [entry["kind"] for entry in skipper] == ["fire", "skip"]
    assert every_second[2]["slot_ms"] - every_second[1]["slot_ms"] >= 4000
    fired_ids = {entry["task_id"] for entry in every_second + skipper if entry["task_id"]}
    assert queued_tick_ids() == fired_ids and len(fired_ids) == 4
    status = tp.schedules.status("skipper")
    assert (status.fired, status.skipped, status.last_source) == (1, 1, "fire")
    assert tp.schedules.status("every-second").last_source == "late"


def test_pause_lasts_across_schedulers_and_run_fires_by_hand(redis_url: str) -> None:
    tp.scheduler(owner="a").step()  # baseline
    paused = tp.schedules.pause("every-second")
    assert paused.paused and paused.next_run_ms is None
    wait_for_next_slot(1)
    restarted = tp.scheduler(owner="b")  # a scheduler started after the pause honours it
    tp.storage.client.delete(tp.storage.keys.scheduler_lease())
    restarted.step()
    assert fires("every-second") == [] and tp.schedules.status("every-second").paused
    manual_id = tp.schedules.run("every-second")  # firing by hand works while paused
    status = tp.schedules.status("every-second")
    assert (status.manual, status.last_source, status.last_task_id, status.last_state) == (
        1,
        "manual",
        manual_id,
        "queued",
    )
    resumed = tp.schedules.resume("every-second")
    assert not resumed.paused and resumed.next_run_ms is not None
    wait_for_next_slot(1)
    restarted.step()
    kinds = [entry["kind"] for entry in fires("every-second")]
    assert kinds == ["manual", "fire"]  # the slots passed while paused were not fired on resume


def test_unknown_schedule_is_not_found(redis_url: str) -> None:
    from taskplane import NotFoundError

    with pytest.raises(NotFoundError, match="no schedule named 'nope'; declared: every-second, nightly, skipper"):
        tp.schedules.pause("nope")
