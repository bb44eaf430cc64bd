"""Settings: defaults, REDIS_URL fallback, one-line errors."""

import pytest

from taskplane import ConfigurationError
from taskplane.core.settings import load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKPLANE_REDIS_URL", raising=False)
    settings = load_settings()
    assert settings.redis_url is None and settings.key_prefix == "taskplane:"
    assert (settings.soft_time_limit, settings.time_limit, settings.shutdown_timeout) == (600, 900, 30)
    assert settings.record_retention == 7 * 24 * 3600 and settings.max_deliveries == 3
    assert settings.dead_letter_cap == 100_000


def test_redis_url_falls_back_to_REDIS_URL(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKPLANE_REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/2")
    assert load_settings().redis_url == "redis://127.0.0.1:6390/2"


@pytest.mark.parametrize("url", ["redis+cluster://h1:7000,h2:7001", "rediss+cluster://:pw@h1:7000/0"])
def test_a_cluster_url_is_a_redis_url(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("TASKPLANE_REDIS_URL", url)
    assert load_settings().redis_url == url


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("TASKPLANE_REDIS_URL", "http://x", "redis://"),
        ("TASKPLANE_REDIS_URL", "redis://h:port/0", "bad port"),
        ("TASKPLANE_REDIS_URL", "redis+cluster://h1:7000,h2", "cluster node 'h2' is not host:port"),
        ("TASKPLANE_REDIS_URL", "rediss+cluster://h1:7000/3", "a cluster has only database 0"),
        ("TASKPLANE_SHUTDOWN_TIMEOUT", "-1", "shutdown_timeout"),
        ("TASKPLANE_TIME_LIMIT", "soon", "time_limit"),
        ("TASKPLANE_KEY_PREFIX", "app{:", "no complete hash tag"),
        ("TASKPLANE_KEY_PREFIX", "{}:", "no complete hash tag"),
        ("TASKPLANE_KEY_PREFIX", "a}b:", "no complete hash tag"),
    ],
)
def test_a_bad_setting_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_settings()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("prefix", ["taskplane:", "{tp}:", "app{one}:", "{a}}:"])
def test_a_prefix_may_hold_one_complete_hash_tag(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    monkeypatch.setenv("TASKPLANE_KEY_PREFIX", prefix)
    assert load_settings().key_prefix == prefix
