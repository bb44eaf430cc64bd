import random
from typing import Any

import pytest

from taskplane import ConfigurationError, RateLimit, Retry
from taskplane.core.topology import Topology, dead_letter_name


def test_retry_backoff_follows_the_schedule_and_repeats_the_last_delay() -> None:
    policy = Retry(max_retries=5, backoff=(60, 300, 900), jitter=False)
    assert [policy.delay(n) for n in range(1, 6)] == [60, 300, 900, 900, 900]


def test_retry_jitter_stays_within_ten_percent() -> None:
    policy = Retry(backoff=(100,), jitter=True)
    rng = random.Random(7)
    delays = [policy.delay(1, rng) for _ in range(500)]
    assert min(delays) >= 90 and max(delays) <= 110 and len(set(delays)) > 100


def test_exponential_retry_is_capped() -> None:
    policy = Retry.exponential(max_retries=8, first=1, factor=2, cap=30, jitter=False)
    assert [policy.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_never_on_wins_over_on() -> None:
    policy = Retry(on=(Exception,), never_on=(KeyError,))
    assert policy.retries_on(ValueError()) and not policy.retries_on(KeyError())


@pytest.mark.parametrize("kwargs", [{"max_retries": -1}, {"backoff": ()}, {"backoff": (-1,)}, {"jitter": 1.5}])
def test_bad_retry_values_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Retry(**kwargs)


@pytest.mark.parametrize(("rate", "interval"), [("10/s", 0.1), ("30/m", 2.0), ("2/h", 1800.0), ("5/10s", 2.0)])
def test_rate_limits_parse_to_an_emission_interval(rate: str, interval: float) -> None:
    assert RateLimit(rate).interval == pytest.approx(interval)


@pytest.mark.parametrize("rate", ["10", "ten/s", "0/s", "5/w", ""])
def test_bad_rate_limits_are_rejected_with_the_expected_form(rate: str) -> None:
    with pytest.raises(ConfigurationError, match="N/s"):
        RateLimit(rate)


def test_keyed_rate_limit_buckets_by_the_key_function() -> None:
    limit = RateLimit("1/s", key=lambda host, **_: host)
    assert limit.bucket(("a.example",), {}) == "a.example"
    assert RateLimit("1/s").bucket(("x",), {}) == ""


def test_queues_are_ordered_by_tier_and_custom_queues_join_their_tier() -> None:
    topology = Topology()
    topology.add_queue("reports", "low")
    topology.add_queue("ai_tasks", "high")
    assert topology.names() == ["critical", "high", "ai_tasks", "normal", "low", "reports"]
    assert [s.name for s in topology.ordered(["reports", "critical", "normal"])] == ["critical", "normal", "reports"]
    assert dead_letter_name("reports") == "reports.dead"


@pytest.mark.parametrize(
    ("name", "tier", "match"),
    [("bad name", "low", "bad queue name"), ("x", "urgent", "unknown tier"), ("x.dead", "low", "bad queue name")],
)
def test_bad_queue_declarations_are_rejected(name: str, tier: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Topology().add_queue(name, tier)
