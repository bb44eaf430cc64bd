"""A server taskplane cannot use as given is refused with one line wherever a user meets it: a Valkey Cluster
node given by a plain URL (a real 3-primary cluster with replicas on loopback), a server not in cluster mode
given by a cluster URL, a cluster URL no node answers, and a replica. Before, an enqueue raised redis-py's
ClusterCrossSlotError, a worker died on MOVED and `taskplane check` said ok."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from benchmarks.cluster import LocalCluster
from taskplane import EmbeddedServer
from taskplane.redis.local_servers import free_port

CLUSTER_LINE = "is a cluster node: give the cluster's URL, redis+cluster://host:port"

ENQUEUE = """
import sys
from tests.apps.core_app import tp
try:
    if sys.argv[1] == "batch":
        tp.enqueue_many("t.add", [[1, 2], [3, 4]])
    else:
        tp.enqueue("t.add", [1, 2])
    print("queued")
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}")
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("cluster"), primaries=3, replicas=1) as started:
        yield started


def run(url: str, repo_root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        env={**os.environ, "TASKPLANE_REDIS_URL": url},
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("how", ["single", "batch"])
def test_an_enqueue_to_a_cluster_node_is_refused_with_one_line(
    cluster: LocalCluster, repo_root: Path, how: str
) -> None:
    done = run(cluster.url, repo_root, "-c", ENQUEUE, how)
    assert done.stdout.startswith("RedisUnavailableError: Redis at redis://:***@127.0.0.1:"), done
    assert CLUSTER_LINE in done.stdout and done.stdout.count("\n") == 1, done


@pytest.mark.parametrize("command", [["check"], ["worker", "-A", "tests.apps.core_app:tp"]])
def test_check_and_worker_refuse_a_cluster_node(cluster: LocalCluster, repo_root: Path, command: list[str]) -> None:
    done = run(cluster.url, repo_root, "-m", "taskplane", *command)
    assert done.returncode == 1, done
    assert CLUSTER_LINE in done.stderr and "Traceback" not in done.stderr, done
    assert cluster.password not in done.stderr + done.stdout


@pytest.mark.skipif(
    redis.VERSION < (6, 1), reason="a cluster URL needs redis-py 6.1 (tests/redis/test_cluster_client.py)"
)
def test_a_cluster_url_naming_a_plain_server_or_no_server_is_refused_with_one_line(
    private_server: EmbeddedServer, repo_root: Path
) -> None:
    info = private_server.info()
    assert info is not None
    plain = f"redis+cluster://:{info.password}@127.0.0.1:{info.port}"
    nothing = f"redis+cluster://:{info.password}@127.0.0.1:{free_port()}"
    for url, line in ((plain, "is not in cluster mode: give its redis:// URL"), (nothing, "is unreachable")):
        for command in (["check"], ["worker", "-A", "tests.apps.core_app:tp"]):
            done = run(url, repo_root, "-m", "taskplane", *command)
            assert done.returncode == 1, done
            errors = [text for text in done.stderr.splitlines() if text.startswith("error:")]
            assert len(errors) == 1 and line in errors[0] and "Traceback" not in done.stderr, done
            assert info.password not in done.stderr + done.stdout


def test_check_refuses_a_replica(private_server: EmbeddedServer, tmp_path: Path, repo_root: Path) -> None:
    primary = private_server.info()
    assert primary is not None
    replica = EmbeddedServer(tmp_path / "replica")
    info = replica.start()
    try:
        client = redis.Redis.from_url(info.url)
        client.config_set("masterauth", primary.password)
        client.replicaof("127.0.0.1", primary.port)
        client.close()
        done = run(info.url, repo_root, "-m", "taskplane", "check")
        assert done.returncode == 1, done
        assert "is a replica, which refuses writes: give the primary's address" in done.stderr, done
        assert run(primary.url, repo_root, "-m", "taskplane", "check").returncode == 0
    finally:
        replica.stop()
