"""Private Redis topologies for the suite: a 3-master Cluster with a replica
each, and a primary + replica watched by 3 Sentinels, all on free ports from
the same server binary the suite uses. Formed without redis-cli (CLUSTER
ADDSLOTSRANGE / MEET / REPLICATE), so a pip-only machine can run them."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

import redis

from jobcore.testing import RedisServer

SLOTS = 16384


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError, RuntimeError) as exc:  # mid-failover: no primary named yet
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {timeout}s" + (f" ({last})" if last else ""))


class Cluster:
    def __init__(self, workdir: Path, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 1000) -> None:
        extra = [
            "--cluster-enabled", "yes",
            "--cluster-node-timeout", str(node_timeout_ms),
            "--cluster-replica-validity-factor", "0",
        ]  # fmt: skip
        self.nodes = [
            RedisServer(
                workdir / f"node{i}",
                appendonly=True,
                port=cluster_port(),
                extra_args=[*extra, "--cluster-config-file", "nodes.conf"],
            )
            for i in range(masters * (1 + replicas))
        ]
        self.n_masters = masters

    def start(self) -> None:
        for n in self.nodes:
            n.start()
        first = self.nodes[0].client()
        for n in self.nodes[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", n.port)
        per = SLOTS // self.n_masters
        for i, n in enumerate(self.nodes[: self.n_masters]):
            lo, hi = i * per, (SLOTS - 1 if i == self.n_masters - 1 else (i + 1) * per - 1)
            n.client().execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
        ids = [n.client().execute_command("CLUSTER", "MYID").decode() for n in self.nodes]
        _wait(lambda: all(len(n.client().execute_command("CLUSTER", "NODES").splitlines()) == len(self.nodes)
                          for n in self.nodes), 20, "cluster nodes did not meet")  # fmt: skip
        for j, n in enumerate(self.nodes[self.n_masters :]):
            primary = ids[j % self.n_masters]
            _wait(lambda n=n, p=primary: n.client().execute_command("CLUSTER", "REPLICATE", p), 20,
                  "a replica could not attach")  # fmt: skip
        self.wait_ok()

    def wait_ok(self, timeout: float = 30) -> None:
        def ok() -> bool:
            for n in self.nodes:
                if n.proc is None:
                    continue
                info = n.client().execute_command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info:
                    return False
            return all(n.client().info("replication").get("master_link_status") == "up" for n in self.replicas())

        _wait(ok, timeout, "the cluster was not ok")

    def role(self, node: RedisServer) -> str:
        return str(node.client().info("replication")["role"])

    def masters(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.proc is not None and self.role(n) == "master"]

    def replicas(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.proc is not None and self.role(n) == "slave"]

    def master_of(self, key: str) -> RedisServer:
        slot = int(self.nodes[0].client().execute_command("CLUSTER", "KEYSLOT", key))
        for n in self.masters():
            for lo, hi, *_ in n.client().execute_command("CLUSTER", "SLOTS"):
                if lo <= slot <= hi:
                    port = int(_[0][1])
                    return next(x for x in self.nodes if x.port == port)
        raise RuntimeError(f"no master serves {key!r}")

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def seeds_url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[: self.n_masters]) + "/0"

    def flushall(self) -> None:
        for n in self.masters():
            n.client().flushall()
        for n in self.masters():
            n.client().execute_command("WAIT", 1, 2000)

    def migrate_slot(self, slot: int, source: RedisServer, target: RedisServer, *, finish: bool = True) -> int:
        """Move a slot's keys live (IMPORTING / MIGRATING, then MIGRATE); with
        finish=False the slot is left mid-migration, so clients get ASK."""
        src, dst = source.client(), target.client()
        src_id = src.execute_command("CLUSTER", "MYID").decode()
        dst_id = dst.execute_command("CLUSTER", "MYID").decode()
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        moved = 0
        while True:
            keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not keys:
                break
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            if not finish:
                break
        if finish:
            self.finish_migration(slot, target)
        return moved

    def finish_migration(self, slot: int, target: RedisServer) -> None:
        dst_id = target.client().execute_command("CLUSTER", "MYID").decode()
        for n in self.masters():
            n.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)

    def cleanup(self) -> None:
        for n in self.nodes:
            n.cleanup()


class SentinelSetup:
    def __init__(self, workdir: Path, service: str = "jobcore-test", sentinels: int = 3) -> None:
        self.service = service
        self.primary_server = RedisServer(workdir / "primary", appendonly=True)
        self.replica_server = RedisServer(
            workdir / "replica", appendonly=True, extra_args=["--replicaof", "127.0.0.1", str(self.primary_server.port)]
        )
        self.sentinels = [RedisServer(workdir / f"sentinel{i}") for i in range(sentinels)]

    def start(self) -> None:
        self.primary_server.start()
        self.replica_server.start()
        for s in self.sentinels:
            s.start_sentinel(self.service, self.primary_server.port)
        _wait(self._ready, 30, "the sentinels did not see the replica and each other")

    def _ready(self) -> bool:
        for s in self.sentinels:
            c = s.client()
            if len(c.execute_command("SENTINEL", "REPLICAS", self.service)) < 1:
                return False
            if len(c.execute_command("SENTINEL", "SENTINELS", self.service)) < len(self.sentinels) - 1:
                return False
        return self.replica_server.client().info("replication").get("master_link_status") == "up"

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def primary(self) -> RedisServer:
        for s in self.sentinels:
            try:
                _, port = s.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            except (redis.RedisError, OSError):
                continue
            for n in (self.primary_server, self.replica_server):
                if n.port == int(port):
                    return n
        raise RuntimeError("no sentinel names a primary")

    def replica(self) -> RedisServer:
        p = self.primary()
        return self.replica_server if p is self.primary_server else self.primary_server

    def failover(self, timeout: float = 30) -> RedisServer:
        """SENTINEL FAILOVER; returns the new primary once it serves and the old
        one has rejoined as its replica."""
        old = self.primary()
        self.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", self.service)
        return self.wait_promoted(old, timeout)

    def wait_promoted(self, old: RedisServer, timeout: float = 30, rejoin: bool = True) -> RedisServer:
        def promoted() -> bool:
            new = self.primary()
            if new is old or new.client().info("replication")["role"] != "master":
                return False
            if rejoin and old.proc is not None:
                return old.client().info("replication").get("master_link_status") == "up"
            return True

        _wait(promoted, timeout, "no new primary")
        return self.primary()

    def flushall(self) -> None:
        p = self.primary().client()
        p.flushall()
        p.execute_command("WAIT", 1, 2000)

    def cleanup(self) -> None:
        for n in (*self.sentinels, self.primary_server, self.replica_server):
            n.cleanup()
