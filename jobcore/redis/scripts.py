"""One typed stub per Lua script (``lua/NAME.lua``): the script's KEYS and ARGV
as a Python signature, so no call site builds a positional list. Each stub
returns the call ``Transport.run_scripts`` sends; the script's header says what
it does and returns. Scripts that only read (stats, in_flight, find_pending) go
by EVALSHA_RO, which a read-only ACL user may run."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources

from jobcore.keys import GROUP, FairKeys
from jobcore.redis.resp import Arg, Script

Call = tuple[Script, Sequence[Arg], Sequence[Arg]]


class ReadOnlyScript(Script):
    """A script that writes nothing, sent as EVALSHA_RO (Redis 7.0, Valkey)."""

    def command(self, keys: Sequence[Arg], args: Sequence[Arg]) -> list[Arg]:
        return ["EVALSHA_RO", self.sha, len(keys), *keys, *args]


@functools.cache
def source(name: str, *libs: str) -> str:
    """A script's text, with the functions of ``libs`` (lua/NAME.lua each: rules
    several scripts share) at its head, after its ``#!lua`` line (which must stay first)."""
    text = resources.files("jobcore.redis").joinpath("lua", f"{name}.lua").read_text()
    if not libs:
        return text
    head, body = text.partition("\n")[::2] if text.startswith("#!") else ("", text)
    return (head + "\n" if head else "") + "".join(source(lib) + "\n" for lib in libs) + body


_ADD = Script(source("add"))
_ADD_ONCE = Script(source("add_once"))
_FETCH = Script(source("fetch", "fair_lib"))
_SETTLE = Script(source("settle", "fair_lib"))
_CLAIM = Script(source("claim"))
_HEARTBEAT = Script(source("heartbeat"))
_LOST = Script(source("lost"))
_FORGET = Script(source("forget"))
_REQUEUE = Script(source("requeue", "counts_lib"))
_PURGE = Script(source("purge", "counts_lib"))
_PARTITIONS = Script(source("partitions"))
_LANES = Script(source("lanes"))
_PAUSE = Script(source("pause"))
_UNGATE = Script(source("ungate"))
_TYPES = Script(source("types"))
_DROP_CONSUMER = Script(source("drop_consumer"))
_ORPHANS = Script(source("orphans"))
_CANCEL = Script(source("cancel"))
_REGISTER = Script(source("register"))
_CREATE_GROUP = Script(source("create_group"))
_FAIR_SET = Script(source("fair_set", "fair_lib"))
_FAIR_SWEEP = Script(source("fair_sweep", "fair_lib"))
# Read scripts, each both ways: EVALSHA for a server that knows no EVALSHA_RO.
_STATS = (ReadOnlyScript(source("stats")), Script(source("stats")))
_IN_FLIGHT = (ReadOnlyScript(source("in_flight")), Script(source("in_flight")))
_DRAINED = (ReadOnlyScript(source("drained")), Script(source("drained")))
_FIND_PENDING = (ReadOnlyScript(source("find_pending")), Script(source("find_pending")))
_FAIR_READ = (ReadOnlyScript(source("fair_read", "fair_lib")), Script(source("fair_read", "fair_lib")))
_WAITING = (ReadOnlyScript(source("waiting")), Script(source("waiting")))
_DELETE_WAITING = Script(source("delete_waiting"))
_REMOVE_LANE = Script(source("remove_lane"))

# ---- writes ---------------------------------------------------------------


def add(stream: str, payloads: Sequence[bytes]) -> Call:
    return _ADD, [stream], payloads


def add_once(stream: str, once: str, once_until: str, ttl_ms: int, jobs: Iterable[tuple[str, str, bytes]]) -> Call:
    """``jobs``: (enqueue-once field or '', job id, payload) each."""
    return _ADD_ONCE, [stream, once, once_until], [ttl_ms, *(x for job in jobs for x in job)]


def fetch(lanes: Sequence[tuple[str, str, FairKeys]], consumer: str, count: int, first: int) -> Call:
    """``lanes``: (stream, stats, fair keys) each; ``first``: the 1-based index of the lane that goes first."""
    keys = [k for stream, stats, fair in lanes for k in (stream, stats, *fair.all())]
    return _FETCH, keys, [GROUP, consumer, count, first]


def settle(
    keys: Sequence[str],
    consumer: str,
    failed_keep: int,
    lowest: str,
    highest: str,
    runs: str,
    keep_minutes: int,
    outcomes: Iterable[tuple[str, str, int, str]],
    answers: Sequence[tuple[str, str, str]] = (),
    answer_ttl_ms: int = 0,
) -> Call:
    """``keys``: stream, stats, dead, failed, history, then the lane's fair keys;
    ``outcomes``: (kind, entry id, attempt, text);
    ``answers``: (answer key, entry id, answer) of cancels this settle answers.
    Replies {stale [id, owner], failed dropped by the cap, refused [id, why], warnings}."""
    args: list[Arg] = [GROUP, consumer, failed_keep, lowest, highest, runs, keep_minutes]
    for outcome in outcomes:
        args += outcome
    for _, entry_id, answer in answers:
        args += (entry_id, answer, answer_ttl_ms)
    return _SETTLE, [*keys, *(key for key, _, _ in answers)], args


def claim(
    stream: str,
    stats: str,
    consumer: str,
    owner: str,
    count: int,
    suspects: int,
    suspect_deaths: int,
    died: bool,
    ids: Sequence[str],
) -> Call:
    return _CLAIM, [stream, stats], [GROUP, consumer, owner, count, suspects, suspect_deaths, 1 if died else 0, *ids]


def heartbeat(workers: str, leases: str, worker_id: str, record: str, lease_ms: int, instance: str) -> Call:
    return _HEARTBEAT, [workers, leases], [worker_id, record, lease_ms, instance]


def register(types: str, schemas: str, mapping: Sequence[str]) -> Call:
    """``mapping``: type, schema json, type, schema json..."""
    return _REGISTER, [types, schemas], mapping


def create_group(stream: str) -> Call:
    return _CREATE_GROUP, [stream], [GROUP]


def lost(leases: str) -> Call:
    return _LOST, [leases], []


def forget(workers: str, leases: str, worker_id: str, force: bool) -> Call:
    return _FORGET, [workers, leases], [worker_id, "1" if force else "0"]


def requeue(stream: str, bad: str, ids: Sequence[str], stats: str | None) -> Call:
    """No ids: the oldest 1000. ``stats``: the failed list's type's, whose counter follows."""
    return _REQUEUE, [stream, bad, *([stats] if stats else [])], ids


def purge(bad: str, ids: Sequence[str], stats: str | None) -> Call:
    """No ids: all of them. ``stats``: the failed list's type's, whose counter follows."""
    return _PURGE, [bad, *([stats] if stats else [])], ids


def partitions(partitions_key: str, proposed: Mapping[str, str]) -> Call:
    """``proposed``: each type's lane names, one a line."""
    return _PARTITIONS, [partitions_key], [x for kv in proposed.items() for x in kv]


def lanes(lanes_key: str, stats: str, gate: str, proposed: Sequence[str], before: int = 0, fence_ms: int = 0) -> Call:
    """``lanes_key``, ``gate``: the type's (``Keys``); ``stats``: partition 0's;
    ``before``: the lanes a raise starts from (0: only record them)."""
    return _LANES, [lanes_key, stats, gate], ["\n".join(proposed), before, fence_ms]


def ungate(gate: str, fence: bytes) -> Call:
    return _UNGATE, [gate], [fence]


def pause(stats: str, lanes_key: str, paused: bool) -> Call:
    return _PAUSE, [stats, lanes_key], [1 if paused else 0]


def types(types_key: str, names: Sequence[str]) -> Call:
    return _TYPES, [types_key], names


def drop_consumer(stream: str, consumer: str) -> Call:
    return _DROP_CONSUMER, [stream], [GROUP, consumer]


def fair_set(stream: str, fair: FairKeys, fields: Mapping[str, str]) -> Call:
    """Set (or, with "", remove) these fields of a lane's fair hash."""
    args = [GROUP, *(a for pair in fields.items() for a in pair)]
    return _FAIR_SET, [fair.config, fair.ring, fair.blocked, fair.running, fair.held, stream], args


def fair_sweep(stream: str, fair: FairKeys, cursor: str, count: int) -> Call:
    keys = [stream, fair.config, fair.ring, fair.blocked, fair.waiting, fair.running, fair.held]
    return _FAIR_SWEEP, keys, [GROUP, cursor, count]


def orphans(stream: str, fair: FairKeys, limit: int) -> Call:
    return _ORPHANS, [stream, fair.config, fair.waiting], [GROUP, limit]


def cancel(leases: str, cancels: str, worker: str, items: Sequence[str], ttl_ms: int) -> Call:
    return _CANCEL, [leases, cancels], [worker, ttl_ms, *items]


# ---- reads (``read_only=False``: plain EVALSHA) ----------------------------


def stats(stream: str, stats: str, dead: str, failed: str, fair: FairKeys, *, read_only: bool = True) -> Call:
    return _STATS[0 if read_only else 1], [stream, stats, dead, failed, fair.config, fair.waiting], [GROUP]


def fair_read(stream: str, fair: FairKeys, top: int, *, read_only: bool = True) -> Call:
    keys = [fair.config, fair.ring, fair.blocked, fair.waiting, fair.running, stream]
    return _FAIR_READ[0 if read_only else 1], keys, [top, GROUP]


def in_flight(stream: str, ids: Sequence[bytes], *, read_only: bool = True) -> Call:
    return _IN_FLIGHT[0 if read_only else 1], [stream], [GROUP, *ids]


def drained(stream: str, fence: bytes, *, read_only: bool = True) -> Call:
    return _DRAINED[0 if read_only else 1], [stream], [GROUP, fence]


def find_pending(stream: str, start: str, end: str, count: int, needle: bytes, *, read_only: bool = True) -> Call:
    return _FIND_PENDING[0 if read_only else 1], [stream], [GROUP, start, end, count, needle]


def waiting(stream: str, start: str, count: int, *, read_only: bool = True) -> Call:
    return _WAITING[0 if read_only else 1], [stream], [GROUP, start, count]


def delete_waiting(stream: str, entry_ids: Sequence[str]) -> Call:
    return _DELETE_WAITING, [stream], [GROUP, *entry_ids]


def remove_lane(lane_keys: Sequence[str], fair: FairKeys, type_keys: Sequence[str]) -> Call:
    """Remove a lane while it holds no job; ``type_keys``: its enqueue-once keys, and
    the type's own (lanes, gate) with lane 0."""
    return _REMOVE_LANE, [*lane_keys, *fair.all(), *type_keys], []
