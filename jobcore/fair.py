"""Fairness across accounts: the rules, and the in-process book the memory
backend keeps by them (fetch.lua and settle.lua keep the same on Redis).

In a fair type a worker takes jobs in turn across the accounts that have jobs
waiting (FIFO within an account): an account with 10,000 waiting and one with 5
are served alternately. A weight w gives an account w jobs a turn (others 1);
an account alone in the ring gets as many as the worker asks for. A limit N
(per account, or an account's own) lets at most N of an account's jobs run at
once across every worker; an account at its limit is passed over, so a slot
idles only when every waiting account is at its limit. A job takes a slot when
it is handed out and gives it back when it is settled (done, failed, dead or
handed back); a job of a lost worker keeps its slot until it is settled by the
worker that takes it over. Each partition is fair on its own: an account's jobs
all go to one partition. Accounts are named by their id's decimal digits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from jobcore.display import printable

NO_LIMIT = 0
UNKNOWN_ACCOUNT = ""  # the account of a payload that is not an envelope of ours


def account_name(account_id: int) -> str:
    """An account as fairness names it: its decimal digits, as fetch.lua reads
    them from the envelope; past 2^53 (beyond what a Lua number holds exactly)
    "x" and its 8 bytes' hex."""
    if -(2**53) <= account_id < 2**53:
        return str(account_id)
    return "x" + (account_id & (2**64 - 1)).to_bytes(8, "big").hex()


def most_first(item: tuple[str, int]) -> tuple[int, str]:
    """(account, count) pairs: the most first, then by account."""
    return -item[1], item[0]


@dataclass(frozen=True, slots=True)
class FairSettings:
    """A fair type's settings as stored (each partition holds the same)."""

    on: bool = False
    per_account: int = NO_LIMIT
    limits: dict[str, int] = field(default_factory=dict)  # account -> its own limit
    weights: dict[str, int] = field(default_factory=dict)  # account -> its jobs per turn

    def limit(self, account: str) -> int:
        return self.limits.get(account, self.per_account)

    @classmethod
    def parse(cls, fields: dict[str, str]) -> FairSettings:
        # t:ACCOUNT fields are the turn in progress of a weighted account, not settings.
        limits = {k[2:]: int(v) for k, v in fields.items() if k.startswith("m:") and v.lstrip("-").isdigit()}
        weights = {k[2:]: int(v) for k, v in fields.items() if k.startswith("w:") and v.isdigit()}
        per = fields.get("limit", "0")
        return cls(fields.get("on") == "1", int(per) if per.isdigit() else NO_LIMIT, limits, weights)


class AccountLoad(NamedTuple):
    """One account of a fair type: its jobs waiting and running, and its limit (0: none)."""

    account: str
    waiting: int
    running: int
    limit: int


@dataclass(frozen=True, slots=True)
class FairInfo:
    """A type's fairness as operators see it (Queue.fair_info)."""

    job_type: str
    settings: FairSettings
    accounts_waiting: int
    top_waiting: list[tuple[str, int]]  # (account, jobs waiting), most first
    top_running: list[tuple[str, int]]  # (account, jobs running through the ring), most first
    blocked: list[AccountLoad]  # accounts at their limit with jobs waiting (some, most waiting first)
    blocked_count: int
    queued: int = 0  # jobs in the accounts' queues (taken in by a worker's fetch, waiting their turn; 0 with top=0)
    looked_at: int = 0  # accounts whose queues were read, when too many wait to read all (0: all were)


@dataclass(slots=True)
class FairBook:
    """One fair lane's bookkeeping, in process (the memory backend)."""

    fields: dict[str, str] = field(default_factory=dict)  # what the fair hash holds on Redis
    settings: FairSettings = field(default_factory=FairSettings)
    ring: deque[str] = field(default_factory=deque)
    blocked: set[str] = field(default_factory=set)
    queues: dict[str, deque[str]] = field(default_factory=dict)  # account -> waiting entry ids
    running: dict[str, int] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)  # entry id -> account
    turns: dict[str, int] = field(default_factory=dict)  # account -> jobs of its weighted turn so far

    def configure(self, fields: dict[str, str]) -> None:
        """Set (or, with "", remove) settings, then unblock who a raised limit frees."""
        self.fields = {k: v for k, v in {**self.fields, **fields}.items() if v}
        self.settings = FairSettings.parse(self.fields)
        self.unblock(self.settings)

    def add(self, entry_id: str, account: str, s: FairSettings) -> None:
        q = self.queues.setdefault(account, deque())
        q.append(entry_id)
        if len(q) == 1:
            self._place(account, s)

    def _place(self, account: str, s: FairSettings) -> None:
        lim = s.limit(account)
        if lim > 0 and self.running.get(account, 0) >= lim:
            self.blocked.add(account)
        else:
            self.ring.append(account)

    def next(self, s: FairSettings, exists: Mapping[str, object], count: int) -> list[str]:
        """Up to ``count`` entry ids of the next account whose turn it is, their
        slots taken: ``weight`` of them (1 unless set), or all asked for when no
        other account is ready; [] when every waiting account is at its limit."""
        looks = len(self.ring) + 1
        while looks > 0 and self.ring:
            looks -= 1
            account = self.ring.popleft()
            lim = s.limit(account)
            run = self.running.get(account, 0)
            room = count if lim <= 0 else min(count, lim - run)
            if room <= 0:
                self.blocked.add(account)
                continue
            weight, used = max(1, s.weights.get(account, 1)), self.turns.pop(account, 0)
            alone = not self.ring
            if not alone:
                room = min(room, max(1, weight - used))
            q = self.queues.get(account, deque())
            ids = [q.popleft() for _ in range(min(room, len(q)))]
            got = [i for i in ids if i in exists]
            if got:
                run += len(got)
                self.running[account] = run
                self.held.update(dict.fromkeys(got, account))
            used += len(ids)
            if q:
                if lim > 0 and run >= lim:
                    self.blocked.add(account)
                elif weight > 1 and not alone and used < weight:
                    self.turns[account] = used
                    self.ring.appendleft(account)  # the rest of its turn comes next
                else:
                    self.ring.append(account)
            else:
                self.queues.pop(account, None)
            if got:
                return got
        return []

    def settled(self, entry_id: str) -> bool:
        """A job left the stream: its account's slot comes back. True when that
        puts a blocked account back in the ring (a waiting worker may take it)."""
        s = self.settings
        account = self.held.pop(entry_id, None)
        if account is None:
            return False
        run = self.running.get(account, 0) - 1
        if run <= 0:
            self.running.pop(account, None)
        else:
            self.running[account] = run
        lim = s.limit(account)
        if account in self.blocked and (lim <= 0 or run < lim):
            self.blocked.discard(account)
            self.ring.append(account)
            return True
        return False

    def unblock(self, s: FairSettings) -> None:
        """After a change of limits: the blocked accounts that have a free slot now."""
        for account in sorted(self.blocked):
            lim = s.limit(account)
            if lim <= 0 or self.running.get(account, 0) < lim:
                self.blocked.discard(account)
                self.ring.append(account)

    def info(self, job_type: str, top: int) -> FairInfo:
        s = self.settings
        most = sorted(((a, len(q)) for a, q in self.queues.items()), key=most_first)
        running = sorted(self.running.items(), key=most_first)
        blocked = sorted(
            (AccountLoad(a, len(self.queues.get(a, ())), self.running.get(a, 0), s.limit(a)) for a in self.blocked),
            key=lambda x: (-x.waiting, x.account),
        )
        return FairInfo(
            job_type, s, len(self.queues), most[:top], running[:top], blocked[:top], len(blocked), self.waiting()
        )

    def waiting(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def heads(self, waiting: deque[str]) -> list[str]:
        """The oldest entry of each account's queue, and of what was not taken in."""
        return [q[0] for q in (waiting, *self.queues.values()) if q]

    def pending(self, waiting: deque[str]) -> list[str]:
        """Every waiting entry id: those not taken in, then each account's."""
        return [*waiting, *(i for q in self.queues.values() for i in q)]

    def take(self, waiting: deque[str], payloads: Mapping[str, tuple[bytes | None, int]], count: int) -> list[str]:
        """The memory backend's fetch of a lane: ``waiting`` (never delivered)
        taken in when fair, else the first of it; then up to ``count`` entry ids
        in turn from the accounts' queues, their slots taken."""
        s = self.settings
        out: list[str] = []
        if s.on:
            while waiting:
                entry_id = waiting.popleft()
                self.add(entry_id, account_of_payload(payloads[entry_id][0]), s)
        else:
            out = [waiting.popleft() for _ in range(min(count, len(waiting)))]
        while len(out) < count:
            got = self.next(s, payloads, count - len(out))
            if not got:
                break
            out += got
        return out


def account_of_payload(raw: bytes | None) -> str:
    from jobcore.errors import PayloadError
    from jobcore.model import decode_envelope

    try:
        return account_name(decode_envelope(raw or b"").account_id)
    except PayloadError:
        return UNKNOWN_ACCOUNT


def not_taken_in(info: FairInfo, pending: int) -> int | None:
    """Jobs of a fair type not yet sorted by account (None: unknown, only some
    accounts' queues were read)."""
    return None if info.looked_at else max(0, pending - info.queued)


def info_sample(info: FairInfo) -> str:
    """What the top accounts were picked from, when not from all of them."""
    return f" (among {info.looked_at:,} accounts read at random)" if info.looked_at else ""


def fair_sentences(info: FairInfo, pending: int) -> list[str]:
    """What `why` says of a fair type: who waits, who is at a limit, what is not
    yet sorted by account. ``pending``: the type's jobs waiting in all."""
    s = info.settings
    out: list[str] = []
    for b in info.blocked:
        out.append(
            f"account {b.account} is at its limit ({b.running:,} of {b.limit:,} running); "
            f"{b.waiting:,} of its jobs wait for one of its slots"
        )
    if info.blocked_count > len(info.blocked):
        out.append(f"{info.blocked_count - len(info.blocked):,} more account(s) are at their limit")
    if info.accounts_waiting:
        most = info.top_waiting[0] if info.top_waiting else None
        largest = f", the most {most[0]} ({most[1]:,}){info_sample(info)}" if most else ""
        turns = "fair" if s.on else "no longer fair, the accounts' queues still served in turn"
        out.append(f"{turns}: {info.accounts_waiting:,} account(s) have jobs waiting their turn{largest}")
    fresh = not_taken_in(info, pending)
    if s.on and fresh:
        out.append(f"{fresh:,} job(s) not yet sorted by account: a worker's next fetch takes them in")
    return out


def fair_lines(info: FairInfo, pending: int) -> list[str]:
    """What `jobcore fair TYPE` prints: settings first, then who waits and runs.
    ``pending``: the type's jobs waiting, sorted by account or not yet."""
    s = info.settings
    name = printable(info.job_type)
    if not s.on:
        head = f"{name}: not fair (first in, first out)"
        if info.accounts_waiting:
            head += f"; {info.accounts_waiting:,} account(s) still have jobs waiting their turn from when it was"
        return [head]
    limit = f"at most {s.per_account:,} of an account's jobs run at once" if s.per_account else "no limit per account"
    lines = [f"{name}: fair (accounts take turns); {limit}"]
    for account in sorted({*s.limits, *s.weights}):
        own = []
        if account in s.limits:
            own.append(f"limit {s.limits[account]:,}")
        if account in s.weights:
            own.append(f"weight {s.weights[account]} (jobs per turn)")
        lines.append(f"  account {printable(account)}: {', '.join(own)}")
    fresh = not_taken_in(info, pending)
    if fresh:
        lines.append(f"{fresh:,} job(s) not yet sorted by account: the next fetch of a worker takes them in")
    if not info.accounts_waiting:
        lines.append("no account has jobs waiting their turn")
    else:
        most = ", ".join(f"{printable(a)} ({n:,})" for a, n in info.top_waiting)
        lines.append(f"{info.accounts_waiting:,} account(s) with jobs waiting; most: {most}{info_sample(info)}")
    if info.top_running:
        lines.append("most running: " + ", ".join(f"{printable(a)} ({n:,})" for a, n in info.top_running))
    if info.blocked_count:
        shown = ", ".join(printable(b.account) for b in info.blocked)
        more = f" and {info.blocked_count - len(info.blocked):,} more" if info.blocked_count > len(info.blocked) else ""
        lines.append(f"at their limit, their next jobs waiting for a slot: {shown}{more}")
    return lines
