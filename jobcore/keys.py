"""Every Redis key jobcore uses is built here and nowhere else.

A type's keys share the hash tag ``{type}`` so a Redis Cluster keeps them in
one slot and the per-type Lua scripts stay single-slot; the namespace-wide keys
share the tag ``{namespace}``, so the scripts that use two of them (heartbeat,
forget, extend) stay single-slot too.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_NAMESPACE = "jobcore"
GROUP = "workers"  # the one consumer group on every type stream


@dataclass(frozen=True, slots=True)
class TypeKeys:
    stream: str  # pending + in-flight jobs (consumer group PEL = in flight)
    stats: str  # hash: processed, failed, dead counters
    dead: str  # stream of dead-lettered jobs with reason and raw bytes
    failed: str  # capped stream of jobs whose handler raised
    history: str = ""  # hash: minute -> outcomes and run times (jobcore/history.py), a day of minutes
    once: str = ""  # hash: "account:key" -> the id of the job enqueued with that key (add_once.lua)
    once_until: str = ""  # sorted set: "account:key" -> when the key lapses (Redis ms)


@dataclass(frozen=True, slots=True)
class FairKeys:
    """A lane's fairness across accounts (jobcore/fair.py says the rules), all in
    the lane's slot. An account's waiting entry ids are the list ``config + ":q:"
    + account``: the scripts build that name from ``config`` (one per account),
    and the wake stream's (:attr:`wake`) as fair_lib.lua's ``fair_free`` does."""

    config: str  # hash: on, limit, m:ACCOUNT (its own limit), w:ACCOUNT (its weight); flags v, lim, wt
    ring: str  # list: the accounts with jobs waiting and a free slot, in turn order
    blocked: str  # set: the accounts with jobs waiting and no free slot
    waiting: str  # set: the accounts with a place (in the ring or blocked): jobs waiting, or just served their last
    running: str  # sorted set: account -> its jobs taken through the ring and not settled (kept while a limit is set)
    held: str  # hash, while a limit is set: entry id -> account, of each job in flight (its slot)

    @property
    def wake(self) -> str:
        """Stream (one entry kept): written when an account at its limit gets a slot
        back, so a worker waiting for this lane's next job fetches again."""
        return f"{self.config}:wake"

    def all(self) -> list[str]:
        return [self.config, self.ring, self.blocked, self.waiting, self.running, self.held, self.wake]


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        # An empty namespace is an empty hash tag: on a Cluster the namespace's
        # keys would spread over slots and every script using two fail CROSSSLOT.
        if not self.namespace:
            raise ValueError("the namespace must not be empty (--namespace ''): give a name, e.g. the default jobcore")

    @property
    def _global(self) -> str:
        return f"{self.namespace}:{{{self.namespace}}}"

    @property
    def types(self) -> str:
        """Set of every job type ever enqueued or served (discovery without SCAN)."""
        return f"{self._global}:types"

    @property
    def schemas(self) -> str:
        """Hash: job type -> JSON Schema of its args, published by workers."""
        return f"{self._global}:schemas"

    @property
    def workers(self) -> str:
        """Hash: worker id -> JSON info (host, pid, types, heartbeat...)."""
        return f"{self._global}:workers"

    @property
    def leases(self) -> str:
        """Sorted set: worker id -> lease deadline (Redis server ms). Past it, the
        worker is lost and its in-flight jobs may be taken by live workers."""
        return f"{self._global}:leases"

    @property
    def audit(self) -> str:
        """Stream: the operator actions (jobcore/ops/audit.py), the newest 10,000 kept."""
        return f"{self._global}:audit"

    @property
    def partitions(self) -> str:
        """Hash: job type -> its number of partitions (absent: 1). It only grows."""
        return f"{self._global}:partitions"

    def lanes(self, job_type: str) -> str:
        """String: the type's lane names, one a line, partition 0 first, in the
        type's own slot (beside its stats). Written with the enqueue's replica
        confirmation, so it survives a failover of ``{namespace}`` as the jobs do."""
        return f"{self.namespace}:{{{job_type}}}:lanes"

    def gate(self, job_type: str) -> str:
        """Hash, while a raised partition count waits for the old lanes: ``from``
        (lanes before the raise) and ``fence`` (ms); beside ``lanes``."""
        return f"{self.namespace}:{{{job_type}}}:gate"

    def cancels(self, worker_id: str) -> str:
        """List: cancel requests for one worker ("type\nentry ref"), taken by its
        poll; beside ``leases`` (one slot), so a request checks the lease atomically."""
        return f"{self._global}:cancel:{worker_id}"

    def cancel_verdict(self, lane: str, request: str) -> str:
        """String: what became of one cancel request (Queue.cancel waits for it),
        written by the worker that held the job, expiring on its own. In the job's
        lane slot, so the settle that files the job writes it in the same script."""
        return f"{self.namespace}:{{{lane}}}:cancelled:{request}"

    def fair(self, lane: str) -> FairKeys:
        """A lane's fairness keys, in its slot (a partition is fair on its own:
        an account's jobs all go to one partition)."""
        tag = f"{self.namespace}:{{{lane}}}:fair"
        return FairKeys(
            config=tag,
            ring=f"{tag}:ring",
            blocked=f"{tag}:blocked",
            waiting=f"{tag}:waiting",
            running=f"{tag}:running",
            held=f"{tag}:held",
        )

    def of_type(self, job_type: str) -> TypeKeys:
        tag = f"{self.namespace}:{{{job_type}}}"
        return TypeKeys(
            stream=f"{tag}:jobs",
            stats=f"{tag}:stats",
            dead=f"{tag}:dead",
            failed=f"{tag}:failed",
            history=f"{tag}:history",
            once=f"{tag}:once",
            once_until=f"{tag}:once:until",
        )


# ---- cluster slots -----------------------------------------------------------

SLOTS = 16384


def _crc16_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM: poly 0x1021, init 0), the one Redis Cluster uses."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ byte) & 0xFF]
    return crc


def key_slot(key: bytes | str) -> int:
    """The cluster slot of a key: CRC16 of its hash tag (the part inside the first
    ``{...}``, when not empty), else of the whole key, mod 16384."""
    k = key.encode() if isinstance(key, str) else key
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1 : end]
    return crc16(k) % SLOTS


# ---- partitions ------------------------------------------------------------
# Partition p >= 1 of a type is its own stream with its own hash tag, a "lane"
# named ``type{p`` or ``type{p:k`` (keys ``ns:{type{p:k}:jobs``...): type names
# cannot hold a brace, so a lane never clashes with a type. ``k`` picks the slot:
# on a cluster, whoever declares the partition chooses the candidate whose slot
# is on the master with the fewest partitions of the type, so N partitions over
# N masters get one each. The names are kept in Redis (they are not computed
# again), so every process finds the same streams whatever the map does later.
# Partition 0 is the type's own keys, so a type that grows from 1 partition
# keeps the jobs it has. Outside the backend a job in partition p >= 1 is known
# by the reference ``entry_id@p``.

LANE_MARK = "{"
REF_MARK = "@"
LANE_CANDIDATES = 64  # names tried per partition when placing it on a cluster


def partition_of(account_id: int, partitions: int) -> int:
    """The partition of an account's jobs: CRC-32 (IEEE, as zlib) of the account
    id's decimal digits, modulo the count; the same in every process and language."""
    if partitions <= 1:
        return 0
    return zlib.crc32(str(account_id).encode()) % partitions


def lane(job_type: str, partition: int, candidate: int = 0) -> str:
    """The name of a partition's lane: the type itself for partition 0."""
    if not partition:
        return job_type
    return f"{job_type}{LANE_MARK}{partition}" + (f":{candidate}" if candidate else "")


def lanes(job_type: str, partitions: int) -> list[str]:
    """The first candidate name of each partition (what a single server uses)."""
    return [lane(job_type, p) for p in range(max(1, partitions))]


def lane_slot(name: str) -> int:
    """The cluster slot of a lane's keys (its name is their hash tag)."""
    return crc16(name.encode()) % SLOTS


def placed_lanes(job_type: str, have: Sequence[str], partitions: int, slots: Sequence[str] | None) -> list[str]:
    """``have`` grown to ``partitions`` lanes. With a cluster's ``slots`` (the
    master of each slot), each new partition takes the first candidate name whose
    slot is on a master holding the fewest of the type's lanes so far."""
    out = list(have) or [job_type]
    if not slots:
        return out + [lane(job_type, p) for p in range(len(out), partitions)]
    load = dict.fromkeys(slots, 0)
    for name in out:
        load[slots[lane_slot(name)]] += 1
    for p in range(len(out), partitions):
        fewest = min(load.values())
        best = lane(job_type, p)
        for k in range(LANE_CANDIDATES):
            name = lane(job_type, p, k)
            if load[slots[lane_slot(name)]] == fewest:
                best = name
                break
        load[slots[lane_slot(best)]] += 1
        out.append(best)
    return out


def valid_lane(job_type: str, partition: int, name: str) -> bool:
    """Whether ``name`` (read from Redis) can be partition ``partition`` of ``job_type``."""
    if partition == 0:
        return name == job_type
    head = lane(job_type, partition)
    if name == head:
        return True
    rest = name[len(head) :]
    return name.startswith(head) and rest[:1] == ":" and rest[1:].isdigit() and "}" not in name


@functools.lru_cache(maxsize=4096)
def split_lane(name: str) -> tuple[str, str]:
    """A lane as (job type, the suffix its entries' references carry: "" or "@p")."""
    job_type, mark, rest = name.partition(LANE_MARK)
    return (job_type, f"{REF_MARK}{rest.partition(':')[0]}") if mark else (name, "")


def split_ref(ref: str) -> tuple[str, int]:
    """A job's entry reference as (stream entry id, partition)."""
    entry_id, mark, p = ref.partition(REF_MARK)
    if not mark:
        return ref, 0
    try:
        return entry_id, int(p)
    except ValueError:
        return ref, 0  # not a reference of ours: Redis will say the id is invalid


def entry_order(entry_id: bytes | str) -> tuple[int, int]:
    """A stream entry id (``ms-seq``, or a reference ``ms-seq@p``) as what it
    sorts by; an id that is not one sorts first."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition(REF_MARK)[0].partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0
