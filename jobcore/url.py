"""Queue URLs: the one parser (a URL read once into a :class:`RedisUrl`) and the
one rule for printing them (:func:`redacted`). Pure: no I/O.

- ``redis://[user:pass@]host[:port][/db]``, ``rediss://...``, ``unix://[user:pass@]/path[?db=N]``:
  one server (or a cluster node, which the transport finds out);
- ``redis+cluster://h1:p1,h2:p2[/0]``: a cluster, from these seed nodes;
- ``redis+sentinel://[user:pass@]h1:26379,h2:26379/SERVICE[/DB]`` (``?sentinel_username=``,
  ``?sentinel_password=`` for the sentinels).

Every form takes ``?password=``, ``?db=`` and the TLS fields ``ssl_cert_reqs``,
``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

SINGLE_SCHEMES = ("redis", "rediss", "unix")
REDIS_SCHEMES = (*SINGLE_SCHEMES, "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel")
DEFAULT_PORT = 6379
MAX_PORT = 65535
# ssl_cert_reqs as redis-py reads it: a client is always shown the server's
# certificate, so "optional" verifies it as "required" does; only "none" trusts anyone.
CERT_REQS = {"required": True, "cert_required": True, "optional": True, "cert_optional": True, "none": False,
             "cert_none": False}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RedisUrl:
    """A Redis URL as read: where the servers are and how to speak to them."""

    scheme: str  # lower case, one of REDIS_SCHEMES
    hosts: tuple[tuple[str, int], ...] = ()  # none for a unix socket
    path: str | None = None  # the unix socket
    db: int = 0
    username: str | None = None
    password: str | None = None  # the user part's, else ?password=
    service: str | None = None  # the primary's name at the sentinels
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    tls_verify: bool = True
    tls_ca_certs: str | None = None
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    tls_check_hostname: bool | None = None  # None: when verifying certificates
    query: dict[str, str] = field(default_factory=dict)  # every field, the last of a repeated one

    @property
    def tls(self) -> bool:
        return self.scheme.startswith("rediss")

    @property
    def is_cluster(self) -> bool:
        return self.scheme.endswith("+cluster")

    @property
    def is_sentinel(self) -> bool:
        return self.scheme.endswith("+sentinel")


def scheme_of(url: str) -> str:
    """The scheme in lower case; "" for text with no ``://``."""
    return url.partition("://")[0].lower() if "://" in url else ""


def parse(url: str) -> RedisUrl:
    """A Redis URL of any form above; ValueError saying what is wrong with it."""
    scheme = url.partition("://")[0].lower()
    if scheme not in REDIS_SCHEMES:
        raise ValueError(f"unsupported Redis URL scheme {scheme!r}")
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    cred, _, netloc = parts.netloc.rpartition("@")
    user, _, password = cred.partition(":")
    hosts: tuple[tuple[str, int], ...] = ()
    socket: str | None = None
    service: str | None = None
    db_text = ""
    if scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// URL needs a socket path, e.g. unix:///run/redis.sock")
        socket = parts.path  # so the database comes from ?db= only
    else:
        hosts = tuple(node(h) for h in netloc.split(",") if h)
        names = [p for p in parts.path.split("/") if p]
        if scheme in SINGLE_SCHEMES:
            if len(hosts) > 1:
                raise ValueError(f"a {scheme}:// URL names one server; {scheme}+cluster:// takes several")
            hosts = hosts or (("localhost", DEFAULT_PORT),)
            db_text = parts.path.lstrip("/")
        elif not hosts:
            raise ValueError("the URL names no host")
        elif scheme.endswith("+cluster"):
            if names and names != ["0"]:
                raise ValueError("a Redis Cluster has only database 0")
        elif not names:
            raise ValueError("a Sentinel URL names its service: redis+sentinel://host:26379/SERVICE[/DB]")
        else:
            service = unquote(names[0])
            db_text = names[1] if len(names) > 1 else ""
    db_text = query.get("db") or db_text or "0"
    try:
        db = int(db_text)
    except ValueError:
        raise ValueError(f"bad database number {db_text!r} in Redis URL") from None
    check = query.get("ssl_check_hostname")
    reqs = query.get("ssl_cert_reqs", "required").lower()
    if reqs not in CERT_REQS:
        raise ValueError(f"bad ssl_cert_reqs {reqs!r} in Redis URL: required, optional or none")
    return RedisUrl(
        scheme=scheme,
        hosts=hosts,
        path=socket,
        db=db,
        username=unquote(user) or None,
        password=unquote(password) if password else query.get("password"),
        service=service,
        sentinel_username=query.get("sentinel_username"),
        sentinel_password=query.get("sentinel_password"),
        tls_verify=CERT_REQS[reqs],
        tls_ca_certs=query.get("ssl_ca_certs"),
        tls_certfile=query.get("ssl_certfile"),
        tls_keyfile=query.get("ssl_keyfile"),
        tls_check_hostname=None if check is None else check.lower() in ("1", "true", "yes", "on"),
        query=query,
    )


def node(text: str, *, default_port: int | None = DEFAULT_PORT) -> tuple[str, int]:
    """``host[:port]`` (``[v6]:port`` too) as (host, port): a server in a URL, a
    cluster node's name. With ``default_port=None`` (an address given alone) both
    parts are required. ValueError when they are not there or the port is bad."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.partition(":")[2]
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if default_port is None and not (host and port):
        raise ValueError(f"{text!r} is not HOST:PORT")
    if port and not (port.isascii() and port.isdigit() and int(port) <= MAX_PORT):
        raise ValueError(f"bad port in {text!r}")
    return host.lower() or "localhost", int(port or 0) or (default_port or DEFAULT_PORT)


def redacted(url: str) -> str:
    """A queue URL as it may be printed or logged: whatever comes before the
    host's ``@`` (user:password) and the value of every query field whose name
    holds "password" (``password=``, ``sentinel_password=``, in any case or
    percent-encoding) replaced by ``***``. Text, not :func:`parse`: it must hide
    the secrets of a URL that does not parse too."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    head, q, query = rest.partition("?")
    if head.startswith("/"):
        at = -1  # a socket path: no user part
    elif "@" in head:
        at = head.rfind("@")
    else:
        # No "@" before the "?": it may still end a password holding a "?" or
        # a "/", as long as it comes before any query field's "=".
        eq = rest.find("=")
        at = rest.rfind("@", 0, eq if eq >= 0 else len(rest))
    if at >= 0:
        head, q, query = ("***" + rest[at:]).partition("?")
    if q:
        query = _hide_fields(query, "&;#")
    return f"{scheme}{sep}{head}{q}{query}"


def _hide_fields(text: str, seps: str) -> str:
    if seps:
        return seps[0].join(_hide_fields(part, seps[1:]) for part in text.split(seps[0]))
    key, eq, _ = text.partition("=")
    if eq and "password" in unquote(key.replace("+", " ")).lower():
        return f"{key}=***"
    return text
