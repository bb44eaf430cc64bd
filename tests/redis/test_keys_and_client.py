"""Key names share one prefix; TLS URLs verify the server's certificate."""

from typing import Any

import pytest

from taskplane.redis.keys import Keys


def test_every_key_shares_the_prefix() -> None:
    keys = Keys("app1:")
    names = [
        keys.record("i"),
        keys.index_all_retired(),
        keys.index_state("queued"),
        keys.index_name("n"),
        keys.index_queue("q"),
        keys.delayed("q"),
        keys.dead_index("q.dead"),
        keys.dead_items("q.dead"),
        keys.dead_dropped("q.dead"),
        keys.dead_queues(),
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


@pytest.mark.parametrize(
    "url,expected",
    [
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("rediss://u:p@h:6380/0", "rediss://u:p@h:6380/0?ssl_cert_reqs=required"),
        ("rediss://h:6380/0?ssl_ca_certs=/ca.pem", "rediss://h:6380/0?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required"),
        ("rediss://h:6380/0?ssl_cert_reqs=none", "rediss://h:6380/0?ssl_cert_reqs=none"),
    ],
)
def test_a_tls_url_verifies_the_server_certificate_unless_it_says_otherwise(url: str, expected: str) -> None:
    from taskplane.redis.client import with_tls_verification

    assert with_tls_verification(url) == expected


def test_celery_accepts_a_tls_url_without_ssl_cert_reqs() -> None:
    from taskplane import Taskplane

    tp = Taskplane("tls", redis_url="rediss://u:p@127.0.0.1:6380/0")
    backend: Any = tp.celery.backend  # Celery raises here for rediss:// without ssl_cert_reqs
    assert backend.connparams["ssl_cert_reqs"] == 2  # ssl.CERT_REQUIRED
    assert tp.celery.conf.broker_url.endswith("ssl_cert_reqs=required")
