"""Every key of the console, in one table per screen: the screens' BINDINGS, the footer,
the ``?`` help and the command palette are all made from it, so they cannot disagree.

A ``mutating`` key changes the queue or runs jobs: with ``--read-only`` it is hidden from
the footer, the help and the palette, and pressing it says why it does nothing.
Destructive keys are uppercase or ask first (``confirms``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True, slots=True)
class Key:
    keys: str  # Textual key names, comma-separated: "x,delete"
    action: str | None  # None: handled by a widget (enter on a row, tab between panels); help only
    label: str  # footer and palette
    help: str  # the help line
    show: bool = True  # in the footer
    mutating: bool = False
    confirms: bool = False  # asks y/n first
    display: str | None = None  # how the key is written, when Textual's own way reads badly
    priority: bool = False
    what: str = ""  # what read-only refuses ("the embedded worker"); the label by default

    @property
    def action_name(self) -> str:
        return (self.action or "").split("(", 1)[0]

    @property
    def shown_keys(self) -> str:
        if self.display:
            return self.display
        return " / ".join(_KEY_NAMES.get(k, k) for k in self.keys.split(","))


_KEY_NAMES = {
    "question_mark": "?",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "plus": "+",
    "minus": "-",
    "equals_sign": "=",
    "slash": "/",
}

FILTER_HELP = "account:42 org:ORG acct:NUMBER res:ID type:TYPE or a job id (8+ hex), combined; escape clears"

EVERYWHERE: tuple[Key, ...] = (
    Key("question_mark,f1", "help", "Help", "these keys, and what the numbers mean", display="? / f1"),
    Key("ctrl+p", None, "Commands", "the command palette: every action by name"),
    Key("ctrl+q", None, "Quit", "quit (a running embedded worker hands its jobs back)"),
)

MAIN: tuple[Key, ...] = (
    Key("question_mark,f1", "help", "Help", "these keys, and what the numbers mean", display="?"),
    Key("slash", "filter", "Filter", f"filter the in-flight jobs (and the dead / failed lists): {FILTER_HELP}"),
    Key("j", "find", "Find", "find a job by an id copied from a log line (or account:42 ...): where it is"),
    Key("d", "bad('dead')", "Dead", "dead jobs, grouped by cause"),
    Key("f", "bad('failed')", "Failed", "failed jobs, grouped by cause"),
    Key("w", "why", "Why", "on a queue row or an in-flight job: why its jobs wait, in words (jobcore why)", show=False),
    Key("u", "audit", "Audit", "the operator actions recorded: who did what, when (jobcore audit)", show=False),
    Key("v", "waiting", "Waiting", "on a queue row: its waiting jobs, oldest first (jobcore pending)", show=False),
    Key(
        "h",
        "history",
        "History",
        "per-minute history kept in Redis: last hour, 24 h on h; p50/p95 run time",
        show=False,
    ),
    Key(
        "P",
        "pause_type",
        "Pause",
        "on a queue row or an in-flight job: pause / resume its type in Redis (jobcore pause|resume)",
        show=False,  # a row's action, in help and the palette: the footer keeps q Quit at 80 columns
        mutating=True,
        confirms=True,
        what="pause / resume",
    ),
    Key(
        "c",
        "cancel",
        "Cancel",
        "on an in-flight row: cancel that running job (jobcore cancel)",
        show=False,  # a row's action, in help and the palette: the footer keeps q Quit at 80 columns
        mutating=True,
        confirms=True,
        what="cancel",
    ),
    Key("e", "enqueue", "Enqueue", "enqueue test jobs (on a queue row: that type)", mutating=True),
    Key(
        "s",
        "worker",
        "Worker",
        "start / stop the embedded worker (stop lets running jobs finish)",
        mutating=True,
        what="the embedded worker",
    ),
    Key("r", "refresh", "Refresh", "refresh now", show=False),
    Key("p", "freeze", "Freeze", "freeze / unfreeze the live numbers (P pauses a job type)", show=False),
    Key("q", "quit", "Quit", "quit (asks first while the embedded worker runs jobs)"),
    Key("enter", None, "Details", "details of the selected in-flight job; on a queue row: enqueue that type"),
    Key("right_square_bracket", "page(1)", "Next page", "next page of in-flight jobs", show=False),
    Key("left_square_bracket", "page(-1)", "Previous page", "previous page of in-flight jobs", show=False),
    Key(
        "plus,equals_sign",
        "concurrency(1)",
        "More slots",
        "embedded worker concurrency +1 (applies on start)",
        show=False,
        mutating=True,
        what="the embedded worker",
    ),
    Key(
        "minus",
        "concurrency(-1)",
        "Fewer slots",
        "embedded worker concurrency -1",
        show=False,
        mutating=True,
        what="the embedded worker",
    ),
    Key("tab", None, "Next panel", "move between panels"),
    Key("z", "screen.maximize", "Zoom", "zoom the focused panel (escape to restore)", show=False),
    Key(
        "a",
        "accounts",
        "Accounts",
        "on a queue row or an in-flight job: its type's fairness across accounts, who waits, who runs, the limits",
        show=False,
    ),
)

BAD: tuple[Key, ...] = (
    Key("escape", "back", "Back", "back (from a group's jobs: to the groups)"),
    Key("question_mark,f1", "help", "Help", "these keys", display="?"),
    Key("tab", "switch", "Dead⇄failed", "switch between dead and failed", priority=True),
    Key("slash", "filter", "Filter", f"filter the jobs (groups count the matching ones): {FILTER_HELP}"),
    Key("g", "grouping", "Groups⇄jobs", "failures grouped by type and cause, or every job"),
    Key("t", "type_filter", "Type", "show one job type, the next on each press, then all"),
    Key("enter", None, "Open", "on a group: its jobs; on a job: details (reason, traceback, args)"),
    Key(
        "r",
        "requeue(False)",
        "Requeue",
        "requeue the selected job, or every job of the selected group (asks first, naming them)",
        mutating=True,
        confirms=True,
    ),
    Key(
        "R",
        "requeue(True)",
        "Requeue all",
        "requeue every listed job (asks first)",
        mutating=True,
        confirms=True,
        what="requeue",
    ),
    Key(
        "x,delete",
        "purge(False)",
        "Purge",
        "purge the selected job, or every job of the selected group (asks first)",
        mutating=True,
        confirms=True,
    ),
    Key(
        "X",
        "purge(True)",
        "Purge all",
        "purge every listed job (asks first)",
        mutating=True,
        confirms=True,
        what="purge",
    ),
    Key("ctrl+r", "reload", "Reload", "read the list again", show=False),
)

DETAIL: tuple[Key, ...] = (
    Key("escape,q", "close", "Close", "close"),
    Key(
        "r",
        "act('requeue')",
        "Requeue",
        "requeue this dead or failed job (asks first)",
        show=False,
        mutating=True,
        confirms=True,
    ),
    Key(
        "x",
        "act('purge')",
        "Purge",
        "purge this dead or failed job (asks first)",
        show=False,
        mutating=True,
        confirms=True,
    ),
)

FIND: tuple[Key, ...] = (
    Key("escape", "close", "Close", "close"),
    Key("enter", None, "Find / open", "in the box: find; on a result: its details"),
    Key("w", "why", "Why", "why the selected job (or its type) waits"),
    Key(
        "c",
        "cancel",
        "Cancel job",
        "cancel the selected job when it runs (asks first)",
        mutating=True,
        confirms=True,
        what="cancel",
    ),
)

HISTORY: tuple[Key, ...] = (
    Key("escape,q", "close", "Back", "back to the main screen"),
    Key("h", "span", "1h⇄24h", "the last hour or the last 24 hours"),
)

WHY: tuple[Key, ...] = (Key("escape,q,enter", "close", "Close", "close"),)
AUDIT: tuple[Key, ...] = (Key("escape,q,enter", "close", "Close", "close"),)
WAITING: tuple[Key, ...] = (
    Key("escape", "close", "Close", "close"),
    Key("enter", None, "Details", "details of the selected waiting job"),
    Key("right_square_bracket", "page", "Next page", "the next page of waiting jobs"),
    Key("left_square_bracket", "first", "First page", "back to the oldest"),
    Key("slash", "filter", "Filter", f"list only the waiting jobs that match (the console's filter): {FILTER_HELP}"),
    Key(
        "D",
        "delete",
        "Delete job",
        "delete the selected waiting job (asks first; a job a worker takes meanwhile runs)",
        mutating=True,
        confirms=True,
        what="delete",
    ),
    Key(
        "X",
        "delete_matching",
        "Delete matching",
        "delete every waiting job the filter matches (counts them, then asks)",
        mutating=True,
        confirms=True,
        what="delete",
    ),
)

FAIR: tuple[Key, ...] = (
    Key("escape,q,a", "close", "Close", "close"),
    Key(
        "l",
        "limit",
        "Limit",
        "set how many of one account's jobs run at once (0: no limit; asks first)",
        mutating=True,
        confirms=True,
        what="the limit",
    ),
    Key(
        "t",
        "switch_fair",
        "Fair on/off",
        "turn fairness across accounts on or off (asks first)",
        mutating=True,
        confirms=True,
        what="fairness",
    ),
)

ENQUEUE: tuple[Key, ...] = (
    Key("escape", "cancel", "Cancel", "cancel"),
    Key("ctrl+s", "send", "Send", "send (one enqueue_many round trip)", priority=True),
    # Tab moves focus before the next key is read (priority), so keys typed fast after it
    # land in the next field, not the one it left.
    Key(
        "tab",
        "field(1)",
        "Next field",
        "next field; args are checked against the type's schema as you type",
        priority=True,
    ),
    Key("shift+tab", "field(-1)", "Previous field", "previous field", show=False, priority=True),
    Key("ctrl+a", None, "Select all", "select the whole field: type to replace it, backspace to clear it"),
)

SECTIONS: tuple[tuple[str, tuple[Key, ...]], ...] = (
    ("Everywhere", EVERYWHERE),
    ("Main screen", MAIN),
    ("Dead and failed jobs", BAD),
    ("Job details", DETAIL),
    ("Find a job", FIND),
    ("History", HISTORY),
    ("Why is it waiting?", WHY),
    ("Waiting jobs", WAITING),
    ("Operator actions", AUDIT),
    ("Fair across accounts", FAIR),
    ("Enqueue", ENQUEUE),
)


def bindings(table: Iterable[Key]) -> list[BindingType]:
    """A screen's BINDINGS. Each mutating key gets a hidden twin on the same keys that
    runs when read-only disables the first (``check_action``): it says why."""
    out: list[BindingType] = []
    for k in table:
        if k.action is None:
            continue
        shown = k.display if k.display and "/" not in k.display else None
        out.append(Binding(k.keys, k.action, k.label, show=k.show, key_display=shown, priority=k.priority))
        if k.mutating:
            what = k.what or k.label.lower()
            out.append(Binding(k.keys, f"app.refuse({what!r})", k.label, show=False, priority=k.priority))
    return out


def hint(table: Sequence[Key], read_only: bool, actions: Iterable[str]) -> str:
    """ "r: requeue · x: purge" for the named actions, as a subtitle or a dialog's last line."""
    wanted = list(actions)
    keys = [k for k in visible(table, read_only) if k.action in wanted]
    keys.sort(key=lambda k: wanted.index(k.action or ""))
    return " · ".join(f"{_KEY_NAMES.get(k.keys.split(',')[0], k.keys.split(',')[0])}: {k.label.lower()}" for k in keys)


def mutating_actions(table: Iterable[Key]) -> frozenset[str]:
    return frozenset(k.action_name for k in table if k.mutating and k.action)


def visible(table: Sequence[Key], read_only: bool) -> list[Key]:
    """The keys a person can use here: the mutating ones are gone in read-only."""
    return [k for k in table if not (read_only and k.mutating)]
