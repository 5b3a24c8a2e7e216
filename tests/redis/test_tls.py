"""TLS on every connection: a private CA, server and client certificates, and a
redis-server that requires client certificates (mutual TLS)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme

import jobcore
from jobcore import ConnectionFailed, Job, JobcoreError
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    d = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("jobcore-client")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    server.private_key_and_cert_chain_pem.write_to_path(str(d / "server.pem"))
    client.cert_chain_pems[0].write_to_path(str(d / "client.crt"))
    client.private_key_pem.write_to_path(str(d / "client.key"))
    port, proc = _tls_redis(d, "server.pem", "yes")
    yield port, d
    proc.kill()
    proc.wait()


def _tls_redis(d: Path, cert: str, auth_clients: str) -> tuple[int, subprocess.Popen[bytes]]:
    """A TLS-only redis-server with ``d/cert`` (key and chain), trusting ``d/ca.pem``."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not on PATH", pytrace=False)
    port = free_port()
    args = [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--tls-cert-file", str(d / cert), "--tls-key-file", str(d / cert),
            "--tls-ca-cert-file", str(d / "ca.pem"), "--tls-auth-clients", auth_clients, "--dir", str(d)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return port, proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the TLS redis-server did not start: {proc.stderr.read() if proc.stderr else ''!r}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def impostor(tls_server: tuple[int, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A TLS server at the same address kind whose certificate an untrusted CA
    issued (one the client was not given)."""
    d = tmp_path_factory.mktemp("impostor")
    trustme.CA().issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(d / "server.pem")
    )
    shutil.copy(tls_server[1] / "ca.pem", d / "ca.pem")
    port, proc = _tls_redis(d, "server.pem", "no")
    yield port
    proc.kill()
    proc.wait()


def _url(port: int, d: Path, *, client_cert: bool = True, ca: bool = True) -> str:
    q = []
    if ca:
        q.append(f"ssl_ca_certs={quote(str(d / 'ca.pem'))}")
    if client_cert:
        q += [f"ssl_certfile={quote(str(d / 'client.crt'))}", f"ssl_keyfile={quote(str(d / 'client.key'))}"]
    return f"rediss://127.0.0.1:{port}/0?" + "&".join(q)


async def test_mutual_tls_with_a_private_ca_on_every_path(tls_server: tuple[int, Path]) -> None:
    port, d = tls_server
    q = jobcore.connect(_url(port, d))
    try:
        await q.register_types({"t": {}})
        await q.enqueue(Job(type="t", args={"n": 1}))
        await q.enqueue_many([Job(type="t", args={"n": i}) for i in range(3)])
        assert (await q.stats()).types["t"].pending == 4
        got = await q.fetch("w", ["t"], 10, 0)  # the worker's path
        assert len(got) == 4
        assert len(await q.in_flight()) == 4
        # A clone (the heartbeat's, the console's embedded worker's) keeps the TLS settings.
        c = q.clone()
        assert await c.heartbeat({"id": "w", "types": ["t"]}, 5000)
        await c.close()
    finally:
        await q.close()


async def test_without_the_ca_or_the_client_certificate_it_is_refused_clearly(tls_server: tuple[int, Path]) -> None:
    port, d = tls_server
    for url, why in ((_url(port, d, ca=False), "CERTIFICATE_VERIFY_FAILED|certificate verify failed"),
                     (_url(port, d, client_cert=False), "unreachable|refused|closed|reset")):  # fmt: skip
        q = jobcore.connect(url)
        try:
            with pytest.raises(ConnectionFailed, match=why):
                await q.ping()
        finally:
            await q.close()


def test_plain_text_to_the_tls_port_gets_nothing(tls_server: tuple[int, Path]) -> None:
    port, _ = tls_server
    ctx = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", port), 2) as s, pytest.raises(ssl.SSLError):
        ctx.wrap_socket(s, server_hostname="127.0.0.1").do_handshake()


async def test_optional_verification_refuses_a_certificate_from_an_untrusted_ca(
    tls_server: tuple[int, Path], impostor: int, caplog: pytest.LogCaptureFixture
) -> None:
    """``ssl_cert_reqs=optional`` verifies a certificate presented (as redis-py
    does), with or without ``ssl_ca_certs``; only ``none`` turns it off, saying so."""
    d = tls_server[1]
    for url in (_url(impostor, d, client_cert=False), _url(impostor, d, client_cert=False, ca=False)):
        q = jobcore.connect(url + "&ssl_cert_reqs=optional")
        try:
            with pytest.raises(JobcoreError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
                await q.enqueue(Job(type="t", args={"n": 1}))
        finally:
            await q.close()
    # The real server, its certificate verified under optional.
    q = jobcore.connect(_url(tls_server[0], d) + "&ssl_cert_reqs=optional")
    try:
        await q.ping()
    finally:
        await q.close()
    caplog.clear()
    q = jobcore.connect(_url(impostor, d, client_cert=False) + "&ssl_cert_reqs=none")
    try:
        await q.ping()
    finally:
        await q.close()
    assert [r.getMessage() for r in caplog.records if "not verified" in r.getMessage()], caplog.text


def test_an_unknown_ssl_cert_reqs_is_refused() -> None:
    with pytest.raises(ValueError, match="ssl_cert_reqs"):
        jobcore.connect("rediss://127.0.0.1:1/0?ssl_cert_reqs=maybe")
