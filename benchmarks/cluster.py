"""A Valkey Cluster on loopback for tests and fault runs: primaries and their replicas, each a
``valkey-server`` process of its own (the binary the embedded server uses), created with ``valkey-cli
--cluster create``, stopped by pid.

    with LocalCluster(directory, primaries=3, replicas=1) as cluster:
        cluster.url            # redis://:<password>@127.0.0.1:<first port>/0
        cluster.kill(port)     # SIGKILL one node (a failover when it was a primary)
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import redis
import redis.cluster

from taskplane.redis.embedded import find_server_binary
from taskplane.redis.local_servers import free_port


@dataclass
class Node:
    """One cluster node: its port and process."""

    port: int
    process: subprocess.Popen[bytes]
    log: BinaryIO


class LocalCluster:
    """``primaries`` primaries with ``replicas`` replicas each, on free loopback ports under ``directory``."""

    def __init__(
        self,
        directory: Path,
        primaries: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 2000,
        persistence: bool = True,
    ) -> None:
        self.directory = directory
        self.primaries = primaries
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.persistence = persistence  # AOF on each node (off for benchmarks)
        self.password = secrets.token_hex(16)
        self.nodes: list[Node] = []
        self.server = find_server_binary()
        self.cli = str(Path(self.server).with_name("valkey-cli"))

    @property
    def url(self) -> str:
        """A URL of the first node that still runs (a cluster client finds the others from it)."""
        port = next(node.port for node in self.nodes if node.process.poll() is None)
        return f"redis://:{self.password}@127.0.0.1:{port}/0"

    def start(self, timeout: float = 60.0) -> LocalCluster:
        """Start every node, join them into one cluster, and wait until every slot is served."""
        taken: set[int] = set()

        def fresh() -> int:  # the OS may hand a port it just handed out again: every node needs two of its own
            port = free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            return port

        for _ in range(self.primaries * (1 + self.replicas)):
            port = fresh()
            home = self.directory / str(port)
            home.mkdir(parents=True)
            argv = [
                self.server,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(home),
                "--cluster-enabled", "yes",
                "--cluster-port", str(fresh()),  # else port + 10000, past 65535 for a high free port
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--appendonly", "yes" if self.persistence else "no",
                "--save", "",
                "--requirepass", self.password,
                "--masterauth", self.password,
            ]  # fmt: skip
            log = open(home / "server.log", "wb")  # noqa: SIM115 - closed in stop()
            self.nodes.append(Node(port, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), log))
        for node in self.nodes:
            self._wait(functools.partial(self._answers, node.port), timeout)
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [self.cli, "-a", self.password, "--no-auth-warning", "--cluster", "create", *addresses,
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=timeout,
        )  # fmt: skip
        self.wait_ok(timeout)
        return self

    def wait_ok(self, timeout: float = 60.0) -> None:
        """Wait until every running node says the cluster is ok (every slot served) and every replica has
        synced with its primary (a replica that never synced refuses to fail over: its data counts as too old,
        ``cluster-replica-validity-factor``)."""
        for node in self.running():
            self._wait(functools.partial(self._cluster_ok, node.port), timeout)
        for node in self.running():
            self._wait(functools.partial(self._synced, node.port), timeout)

    def running(self) -> list[Node]:
        """The nodes whose process runs."""
        return [node for node in self.nodes if node.process.poll() is None]

    def primary_ports(self) -> list[int]:
        """Ports of the running nodes that are primaries now."""
        return [node.port for node in self.running() if self._role(node.port) == "master"]

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port``."""
        node = next(node for node in self.nodes if node.port == port)
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()

    def freeze(self, port: int) -> None:
        """SIGSTOP the node on ``port``: it holds its connections open and answers nothing (a failover when
        it was a primary and stays frozen past the node timeout)."""
        next(node for node in self.nodes if node.port == port).process.send_signal(signal.SIGSTOP)

    def thaw(self, port: int) -> None:
        """SIGCONT a node :meth:`freeze` stopped (a primary failed over meanwhile comes back as a replica)."""
        next(node for node in self.nodes if node.port == port).process.send_signal(signal.SIGCONT)

    def migrate(self, slot: int, to_port: int, batch: int = 10, pause: float = 0.0) -> int:
        """Move ``slot`` to the primary on ``to_port`` as ``valkey-cli --cluster reshard`` does (IMPORTING on
        the target, MIGRATING on the source, MIGRATE the keys ``batch`` at a time with ``pause`` s between,
        then the slot's new owner told to every primary): while it runs, a command for a key already moved is
        answered ASK, one whose keys are split TRYAGAIN. Returns how many keys moved."""
        source_port = self.mark_migrating(slot, to_port)
        source: Any = self._client(source_port)  # redis-py's execute_command is untyped
        moved = 0
        while keys := source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
            source.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "AUTH", self.password, "KEYS", *keys)
            moved += len(keys)
            time.sleep(pause)
        target_id = self._client(to_port).cluster("MYID")
        for port in [to_port, source_port, *[p for p in self.primary_ports() if p not in (to_port, source_port)]]:
            node: Any = self._client(port)
            node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        return moved

    def mark_migrating(self, slot: int, to_port: int) -> int:
        """Begin moving ``slot`` to the primary on ``to_port`` (IMPORTING there, MIGRATING on its owner) without
        moving a key; returns the owner's port. :meth:`mark_stable` calls it off."""
        routing: Any = redis.cluster.RedisCluster(host="127.0.0.1", port=to_port, password=self.password)
        try:  # (the parsed forms of CLUSTER SHARDS and SLOTS differ between redis-py versions)
            source_port = int(routing.nodes_manager.get_node_from_slot(slot).port)
        finally:
            routing.close()
        source: Any = self._client(source_port)
        target: Any = self._client(to_port)
        target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.cluster("MYID"))
        source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.cluster("MYID"))
        return source_port

    def mark_stable(self, slot: int) -> None:
        """Call off a move of ``slot`` begun by :meth:`mark_migrating` (its keys stay where they are)."""
        for port in self.primary_ports():
            node: Any = self._client(port)
            node.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")

    def stop(self) -> None:
        """Stop every node by its pid (SIGTERM, then SIGKILL after 10 s)."""
        for node in self.running():
            node.process.send_signal(signal.SIGCONT)  # a frozen node cannot act on SIGTERM
            node.process.terminate()
        for node in self.nodes:
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
            node.log.close()

    def _answers(self, port: int) -> bool:
        return bool(self._client(port).ping())

    def _cluster_ok(self, port: int) -> bool:
        return bool(self._client(port).cluster("INFO")["cluster_state"] == "ok")

    def _synced(self, port: int) -> bool:
        replication = self._client(port).info("replication")
        return replication["role"] == "master" or replication.get("master_link_status") == "up"

    def _role(self, port: int) -> str:
        client: Any = self._client(port)
        return str(client.execute_command("ROLE")[0])

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, password=self.password, socket_timeout=2, decode_responses=True)

    @staticmethod
    def _wait(check: Callable[[], object], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(redis.RedisError, OSError, KeyError):
                if check():
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the local cluster was not ready within {timeout:g} s")
            time.sleep(0.1)

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":  # a quick look: start one, show its nodes, stop it
    import tempfile

    with tempfile.TemporaryDirectory() as where, LocalCluster(Path(where)) as cluster:
        print(cluster.url, "primaries", cluster.primary_ports(), "pids", [node.process.pid for node in cluster.nodes])
        nodes = cluster._client(cluster.nodes[0].port).cluster("NODES")
        print(os.linesep.join(f"{address} {node['flags']} slots {node['slots']}" for address, node in nodes.items()))
