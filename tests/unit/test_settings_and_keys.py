import pytest

import taskplane
from taskplane import ConfigurationError
from taskplane.core.settings import load_settings
from taskplane.redis.keys import Keys


def test_defaults(monkeypatch):
    monkeypatch.delenv("TASKPLANE_REDIS_URL", raising=False)
    settings = load_settings()
    assert settings.redis_url is None and settings.key_prefix == "taskplane:"
    assert (settings.soft_time_limit, settings.time_limit, settings.shutdown_timeout) == (600, 900, 30)
    assert settings.record_retention == 7 * 24 * 3600 and settings.max_deliveries == 3
    assert settings.dead_letter_cap == 100_000


def test_redis_url_falls_back_to_REDIS_URL(monkeypatch):
    monkeypatch.delenv("TASKPLANE_REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/2")
    assert load_settings().redis_url == "redis://127.0.0.1:6390/2"


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("TASKPLANE_REDIS_URL", "http://x", "redis://"),
        ("TASKPLANE_REDIS_URL", "redis://h:port/0", "bad port"),
        ("TASKPLANE_SHUTDOWN_TIMEOUT", "-1", "shutdown_timeout"),
        ("TASKPLANE_TIME_LIMIT", "soon", "time_limit"),
    ],
)
def test_a_bad_setting_is_one_clear_line(monkeypatch, env, value, message):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_every_key_shares_the_prefix():
    keys = Keys("app1:")
    names = [
        keys.record("i"),
        keys.index_all(),
        keys.index_state("queued"),
        keys.index_name("n"),
        keys.index_queue("q"),
        keys.delayed("q"),
        keys.dead_index("q.dead"),
        keys.dead_items("q.dead"),
        keys.dead_dropped("q.dead"),
        keys.dead_queues(),
        keys.deliveries("i", 0),
        keys.cancel("i"),
        keys.unique("d"),
        keys.rate("n", "k"),
        keys.worker("h"),
        keys.workers(),
        keys.unacked(),
        keys.unacked_index(),
        keys.unacked_mutex(),
        keys.metrics("h"),
        keys.metrics_hosts(),
    ]
    assert all(name.startswith("app1:") for name in names)
    assert len(set(names)) == len(names)


def test_public_api_is_pinned():
    assert sorted(taskplane.__all__) == [
        "ConfigurationError",
        "DeadFilter",
        "DeadLetter",
        "DeadReason",
        "EmbeddedServer",
        "EmbeddedServerError",
        "IdempotencyConflictError",
        "InvalidRequestError",
        "NotFinishedError",
        "NotFoundError",
        "PayloadTooLargeError",
        "RateLimit",
        "RecordPage",
        "RedisUnavailableError",
        "Retry",
        "Settings",
        "TaskArgumentsError",
        "TaskFailedError",
        "TaskHandle",
        "TaskRecord",
        "TaskState",
        "Taskplane",
        "TaskplaneError",
        "UnknownTaskError",
        "__version__",
        "is_cancelled",
        "progress",
    ]


def test_the_http_api_package_exports_only_its_factory():
    import taskplane.api

    assert sorted(taskplane.api.__all__) == ["API_PREFIX", "create_app"]
    assert taskplane.api.API_PREFIX == "/api/v1"


@pytest.mark.parametrize(
    "url,expected",
    [
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("rediss://u:p@h:6380/0", "rediss://u:p@h:6380/0?ssl_cert_reqs=required"),
        ("rediss://h:6380/0?ssl_ca_certs=/ca.pem", "rediss://h:6380/0?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required"),
        ("rediss://h:6380/0?ssl_cert_reqs=none", "rediss://h:6380/0?ssl_cert_reqs=none"),
    ],
)
def test_a_tls_url_verifies_the_server_certificate_unless_it_says_otherwise(url, expected):
    from taskplane.redis.client import with_tls_verification

    assert with_tls_verification(url) == expected


def test_celery_accepts_a_tls_url_without_ssl_cert_reqs():
    from taskplane import Taskplane

    tp = Taskplane("tls", redis_url="rediss://u:p@127.0.0.1:6380/0")
    backend = tp.celery.backend  # Celery raises here for rediss:// without ssl_cert_reqs
    assert backend.connparams["ssl_cert_reqs"] == 2  # ssl.CERT_REQUIRED
    assert tp.celery.conf.broker_url.endswith("ssl_cert_reqs=required")

