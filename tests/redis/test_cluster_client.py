"""The cluster client (issue 26): a ``redis+cluster://`` URL parsed once (what kombu and Celery are given for
it), and taskplane's stores over a real 3-primary Valkey Cluster with replicas on loopback. Workers on a
cluster: ``tests/e2e/test_cluster_worker.py``. A cluster needs redis-py 6.1 or later (its transactions): the
cluster tests are skipped on the lowest declared redis-py, where the refusal is tested instead."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from benchmarks.cluster import LocalCluster
from taskplane import Taskplane
from taskplane.celery.config import celery_config
from taskplane.core.cluster_url import ClusterUrl, node_url, parse_cluster_url
from taskplane.core.errors import ConfigurationError, RedisUnavailableError
from taskplane.core.protocol import TransportOption
from taskplane.core.settings import load_settings
from taskplane.core.topology import Topology
from taskplane.redis.client import connect, safe_url, unavailable
from taskplane.redis.storage import Storage
from taskplane.stores.dead_letters import DeadLetter, DeadLetterCap, DeadLetterStore
from taskplane.stores.metric_buffer import flush_all
from taskplane.stores.queues import QueueLists
from taskplane.stores.records import RecordStore
from taskplane.stores.requeue import Requeue

QUEUES = ["critical", "high", "normal", "low", "reports", "emails"]


@pytest.mark.parametrize(
    "url,expected",
    [
        ("redis://h:6379/0", None),
        ("redis+cluster://h1:7000", ClusterUrl((("h1", 7000),))),
        (
            "rediss+cluster://app:p%40ss@h1:7000,h2:7001,[::1]:7002/0?ssl_cert_reqs=none",
            ClusterUrl((("h1", 7000), ("h2", 7001), ("::1", 7002)), "app", "p@ss", True, (("ssl_cert_reqs", "none"),)),
        ),
        ("redis+cluster://:secret@h1:7000,h2:7001/", ClusterUrl((("h1", 7000), ("h2", 7001)), None, "secret")),
    ],
)
def test_a_cluster_url_is_parsed_once_into_its_nodes(url: str, expected: ClusterUrl | None) -> None:
    assert parse_cluster_url(url) == expected


@pytest.mark.parametrize(
    "url,problem",
    [
        ("redis+cluster://", "names at least one node"),
        ("redis+cluster://h1:port", "'h1:port' is not host:port"),
        ("redis+cluster://h1", "'h1' is not host:port"),
        ("redis+cluster://h1:7000/2", "only database 0"),
    ],
)
def test_a_bad_cluster_url_is_refused_in_one_line(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as raised:
        parse_cluster_url(url)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "url,node",
    [
        ("redis+cluster://h1:7000,h2:7001", "redis://h1:7000/0"),
        (
            "rediss+cluster://app:p%40ss@[::1]:7000/0?ssl_cert_reqs=none",
            "rediss://app:p%40ss@[::1]:7000/0?ssl_cert_reqs=none",
        ),
        ("redis+cluster://:secret@h1:7000", "redis://:secret@h1:7000/0"),
    ],
)
def test_kombu_and_celery_are_given_the_first_nodes_plain_url(url: str, node: str) -> None:
    cluster = parse_cluster_url(url)
    assert cluster is not None and node_url(cluster) == node


def test_a_cluster_app_uses_the_cluster_transport_and_passes_the_cluster_url_on() -> None:
    url = "redis+cluster://:secret@h1:7000,h2:7001"
    config = celery_config(load_settings(redis_url=url), Topology(), url)
    assert config["broker_url"] == "redis://:secret@h1:7000/0"
    assert config["broker_transport"] == "taskplane.celery.cluster:ClusterTransport"
    assert config["broker_transport_options"][TransportOption.CLUSTER] == url
    assert config["result_backend_transport_options"][TransportOption.CLUSTER] == url
    plain = celery_config(load_settings(), Topology(), "redis://h:6379/0")
    assert plain["broker_transport"] == "taskplane.celery.transport:Transport"
    assert TransportOption.CLUSTER not in plain["broker_transport_options"]


def test_a_cluster_url_needs_redis_py_6_1() -> None:
    url = "redis+cluster://127.0.0.1:1"  # nothing answers there: a client new enough says so
    if redis.VERSION >= (6, 1):
        with pytest.raises(RedisUnavailableError, match="is unreachable"):
            connect(url)
    else:  # the lowest declared redis-py (make test-matrix): refused before any I/O, in one line
        with pytest.raises(ConfigurationError, match=r"a cluster URL needs redis-py 6.1 or later") as raised:
            connect(url)
        assert "\n" not in str(raised.value)


def test_a_cluster_urls_password_is_not_shown() -> None:
    assert safe_url("redis+cluster://:secret@h1:7000,h2:7001/0") == "redis+cluster://:***@h1:7000,h2:7001/0"


@pytest.mark.parametrize(
    "refusal",
    [
        redis.exceptions.TryAgainError("Multiple keys request during rehashing of slot"),
        redis.exceptions.ClusterError("TTL exhausted."),
    ],
)
def test_a_command_refused_while_its_slot_moves_says_so_in_one_line(refusal: Exception) -> None:
    said = str(unavailable("redis+cluster://:secret@h1:7000,h2:7001/0", refusal))
    assert said.startswith("Redis at redis+cluster://:***@h1:7000,h2:7001/0 refuses writes: a slot it needs is moving")
    assert "try again" in said and "\n" not in said
    # any other cluster error keeps its own words
    assert "moving" not in str(unavailable("redis+cluster://h1:7000", redis.exceptions.ClusterError("no node")))


needs_cluster_client = pytest.mark.skipif(redis.VERSION < (6, 1), reason="a cluster needs redis-py 6.1 or later")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("cluster"), primaries=3, replicas=1) as started:
        yield started


def cluster_url(cluster: LocalCluster) -> str:
    first, second = cluster.primary_ports()[:2]
    return f"redis+cluster://:{cluster.password}@127.0.0.1:{first},127.0.0.1:{second}/0"


@needs_cluster_client
def test_the_stores_work_over_a_cluster_and_spread_queues_over_its_nodes(cluster: LocalCluster) -> None:
    storage = Storage(connect(cluster_url(cluster)), Storage.from_url("redis://unused", "taskplane:").keys)
    keys = storage.keys
    records = RecordStore(storage, 3600, lambda: QUEUES)
    # A record per queue, each in its queue's slot: written by one script, found by id alone (a pipeline
    # over every queue, across the nodes), listed merged
    for queue in QUEUES:
        records.write(f"id-{queue}", "t.add", queue, "queued")
    assert all(records.get(f"id-{queue}").queue == queue for queue in QUEUES)  # type: ignore[union-attr]
    assert sorted(record.id for record in records.find(limit=100).records) == sorted(f"id-{q}" for q in QUEUES)
    nodes = {storage.client.get_node_from_key(keys.record(queue, f"id-{queue}")).port for queue in QUEUES}
    assert len(nodes) == 3  # the queues spread over every primary
    # Lengths and in-flight counts: one pipeline across the nodes
    storage.client.lpush(keys.queue("emails"), "m")
    assert QueueLists(storage).lengths(QUEUES)["emails"] == 1
    assert QueueLists(storage).in_flight(QUEUES) == dict.fromkeys(QUEUES, 0)
    # Adoption of a list in another slot, and the bytes-as-they-are client
    storage.client.lpush("normal", "plain-1")
    assert QueueLists(storage).adopt_unprefixed(["normal"]) == 1
    binary = storage.binary()
    try:
        assert binary.lrange(keys.queue("normal"), 0, -1) == [b"plain-1"]
    finally:
        binary.close()
    # A dead letter: added (its script and the set of queues with letters, two slots, one pipeline), then
    # requeued into another queue in two single-slot steps
    letters = DeadLetterStore(storage, QUEUES, DeadLetterCap(100, 1 << 20))
    letters.add(DeadLetter(id="dl-1", name="t.add", queue="low", reason="failed", raw="raw-item"))
    assert letters.get("dl-1") is not None
    requeue = Requeue("low.dead", "dl-1")
    requeue.check(storage.client, keys)
    storage.client.lpush(keys.queue("high"), "raw-item")
    requeue.leave(storage.client, keys, "high")
    assert letters.get("dl-1") is None


@needs_cluster_client
def test_a_batch_the_cluster_refuses_keeps_its_writes_for_the_retry(cluster: LocalCluster) -> None:
    """A task's final writes on a cluster go out as one batch through a cluster pipeline: a write the cluster
    answers with an error (here TRYAGAIN, its queue's slot being moved: redis-py gives up with "TTL exhausted")
    stays queued, and the retry lands it. Before, the batch forgot it, and the record stayed ``started``."""
    storage = Storage(connect(cluster_url(cluster)), Storage.from_url("redis://unused", "taskplane:").keys)
    records = RecordStore(storage, 3600, lambda: ["moving"])
    slot = int(storage.client.keyslot(storage.keys.queue("moving")))
    owner = int(storage.client.get_node_from_key(storage.keys.queue("moving")).port)
    batch = storage.batch()
    batch.script("record_write", *records.write_script("refused-1", "t.add", "moving", "succeeded"))
    cluster.mark_migrating(slot, next(port for port in cluster.primary_ports() if port != owner))
    try:
        with pytest.raises(redis.exceptions.RedisError) as refused:
            batch.execute()
        assert str(refused.value) == "TTL exhausted."  # redis-py followed ASK, then TRYAGAIN, and gave up
        assert records.get("refused-1") is None  # nothing was written
    finally:
        cluster.mark_stable(slot)
    batch.execute()  # the retry
    record = records.get("refused-1")
    assert record is not None and record.state == "succeeded"


@needs_cluster_client
def test_the_scheduler_leads_and_fires_on_a_cluster(cluster: LocalCluster) -> None:
    """The scheduler's lease, epoch and claims (one hash tag of their own) and the task each fire enqueues (into
    its queue's slot, on another node) work over a cluster, as on one server (tests/scheduler/test_leader.py)."""
    tp = Taskplane("sched-cluster", redis_url=cluster_url(cluster), key_prefix="sched-test:")  # its keys apart

    @tp.task(name="c.tick")
    def tick() -> None: ...

    tp.periodic(tick, every=1, name="cluster-tick")
    first, second = tp.scheduler(owner="a"), tp.scheduler(owner="b")
    first.step()
    second.step()
    assert first.is_leader and not second.is_leader
    leader = tp.schedules.leader()
    assert leader is not None and leader.owner == "a"
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.05)  # just after the next second: a slot is due
    first.step()
    fired = [entry for entry in tp.schedules.fires("cluster-tick") if entry["task_id"]]
    assert fired, tp.schedules.fires("cluster-tick")
    record = tp.status(str(fired[0]["task_id"]))
    assert record is not None and record.state == "queued"
    keys = tp.storage.keys
    scheduler_node = storage_node(tp, keys.scheduler_lease())
    assert scheduler_node != storage_node(tp, keys.queue(record.queue))  # the fire crossed nodes
    flush_all()  # the fire's sent count, while the module's cluster still answers (atexit would be too late)


def storage_node(tp: Taskplane, key: str) -> int:
    return int(tp.storage.client.get_node_from_key(key).port)
