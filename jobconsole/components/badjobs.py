"""Dead and failed jobs: why they ended there, and putting them back or purging them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Static

from jobcore import BadJob, FailureGroup, JobQuery
from jobcore.display import clipped, printable
from jobcore.limits import BAD_ALL

from ..context import Which
from ..format import clip, clock, count, short_id
from ..keys import BAD, bindings, hint
from ..messages import PollNow
from ..scope import Triage
from ..snapshot import Snapshot
from .badtext import describe_bad, last_line, name_bad
from .base import ConsoleFooter, Keyed, console_of
from .confirm import ConfirmScreen
from .detail import JobDetailScreen
from .filterbar import FilterBar
from .help import HelpScreen
from .status import StatusBar
from .tables import Cells, LiveTable


class BadTable(LiveTable):
    COLUMNS = (
        ("at", "at"),
        ("job_type", "job_type"),
        ("job_id", "job_id"),
        ("account_id", "account_id"),
        ("attempt", "attempt"),
        ("worker", "worker"),
        ("reason", "reason"),  # last: the one column allowed to run off the edge (the pane shows it all)
    )

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(self.COLUMNS, id=id)


class GroupTable(LiveTable):
    """Failures grouped by type and normalised cause (jobcore.ops.triage), the largest first."""

    COLUMNS = (
        ("jobs", "count"),
        ("job_type", "job_type"),
        ("newest", "newest"),
        ("group", "key"),
        ("cause", "cause"),  # last: may run off the edge (the pane shows an example in full)
    )

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(self.COLUMNS, right=("count",), id=id)


class BadJobsScreen(Keyed, Screen[None]):
    """Dead or failed jobs: grouped by cause (enter: a group's jobs), or every job (g).
    The filter (/) narrows both; requeue and purge act on what is listed."""

    KEYS = BAD
    BINDINGS = bindings(BAD)
    AUTO_FOCUS = ""  # _mode() focuses the table in view (the filter line comes first)

    def __init__(self, which: Which = "dead") -> None:
        super().__init__()
        self.which: Which = which
        self.job_type: str | None = None
        self.loaded: list[BadJob] = []  # the whole list as last read, newest first
        self.grouped = True
        self.group: FailureGroup | None = None  # the group drilled into
        self.triaged = Triage()  # loaded, filtered and grouped
        self.groups: dict[str, FailureGroup] = {}
        self.listed: list[BadJob] = []  # the jobs in view: filtered, and of the group when drilled in
        self.rows: dict[str, BadJob] = {}  # the rows the jobs table shows (the newest dead_limit of listed)
        self._loaded_marker: tuple[int, int] | None = None
        self._shown_worker_width = 0

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Vertical(id="bad-body"):
            yield FilterBar("#groups", id="filter")
            yield GroupTable(id="groups")
            yield BadTable(id="bad")
            with VerticalScroll(id="reason-pane"):
                yield Static(id="reason")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.query_one("#reason-pane").border_title = "reason"
        self.watch(self.app, "snapshot", self._counts_changed, init=False)
        self.watch(self.app, "scope", lambda _: self._relist(), init=False)
        self._mode()
        self._titles()
        self.reload()

    @property
    def showing_groups(self) -> bool:
        return self.grouped and self.group is None

    def _mode(self) -> None:
        """Show the groups table or the jobs table, and send focus (and the filter's enter) there."""
        groups, jobs = self.query_one(GroupTable), self.query_one(BadTable)
        groups.display = self.showing_groups
        jobs.display = not self.showing_groups
        target = groups if self.showing_groups else jobs
        self.query_one(FilterBar).target = f"#{target.id}"
        if not self.query_one(FilterBar).editing:
            target.focus()

    # ---- data -------------------------------------------------------------

    def _total(self, snap: Snapshot | None) -> int | None:
        if snap is None:
            return None
        types = [t for n, t in snap.stats.types.items() if self.job_type in (None, n)]
        return sum(t.dead if self.which == "dead" else t.failed_kept for t in types)

    def _marker(self, snap: Snapshot | None) -> tuple[int, int] | None:
        """Changes whenever the list may have: the failed list is capped, so its
        length alone stops moving once full; the lifetime counter does not."""
        if snap is None:
            return None
        types = [t for n, t in snap.stats.types.items() if self.job_type in (None, n)]
        if self.which == "dead":
            return sum(t.dead for t in types), 0
        return sum(t.failed_kept for t in types), sum(t.failed for t in types)

    def _counts_changed(self, snap: Snapshot | None) -> None:
        """Reload only when the dead/failed numbers moved: the list is not free to read."""
        marker = self._marker(snap)
        if marker is not None and marker != self._loaded_marker:
            self.reload()
        else:
            self._titles()

    def reload(self) -> None:
        self._load(self.which, self.job_type)

    @work(exclusive=True, group="bad-load", exit_on_error=False)
    async def _load(self, which: Which, job_type: str | None) -> None:
        ctx = console_of(self)
        try:
            # The whole list: groups count every job (as jobcore's failure_groups reads it).
            jobs = await ctx.bad_jobs(which, job_type, BAD_ALL)
        except Exception as exc:
            self.notify(f"cannot list {which} jobs: {printable(exc)}", severity="error", markup=False)
            return
        if (which, job_type) != (self.which, self.job_type):
            return  # switched meanwhile; the newer load will show
        self._loaded_marker = self._marker(console_of(self).snapshot)
        self.loaded = jobs
        self._relist()

    def _relist(self) -> None:
        """Filter and group (jobcore's rule) what was loaded, off the UI loop, then show it."""
        self._triage(self.which, self.loaded, console_of(self).scope.query)

    @work(exclusive=True, group="bad-triage", exit_on_error=False)
    async def _triage(self, which: Which, loaded: list[BadJob], query: JobQuery | None) -> None:
        triaged = await console_of(self).triage(which, loaded, query)
        if which != self.which or loaded is not self.loaded:
            return  # switched or reloaded meanwhile; the newer triage will show
        self._apply(triaged)

    def _apply(self, triaged: Triage) -> None:
        self.triaged = triaged
        self.groups = triaged.groups
        if self.group is not None:
            group = self.groups.get(self.group.key)
            if group is None:
                self.notify("that group has no jobs any more (requeued, purged, or filtered out)", timeout=3)
                self.group = None
                self._mode()
            else:
                self.group = group
        self._show_groups(list(self.groups.values()))
        self._narrow()

    def _narrow(self) -> None:
        """Show the jobs of the group drilled into, or every match; no I/O, no grouping."""
        if self.group is None:
            self.listed = list(self.triaged.matching)
        else:
            self.listed = list(self.triaged.members.get(self.group.key, ()))
        self._show(self.listed[: console_of(self).settings.dead_limit])

    def _show_groups(self, groups: Sequence[FailureGroup]) -> None:
        style = "red" if self.which == "dead" else "yellow"
        rows: list[tuple[str, Cells]] = [
            (
                g.key,
                (
                    Text(count(g.count), style="bold", justify="right"),
                    Text(printable(g.job_type), style="bold"),
                    Text(clock(g.newest)),
                    Text(g.key, style="dim"),
                    Text(clip(printable(g.label), 90), style=style),
                ),
            )
            for g in groups
        ]
        self.query_one(GroupTable).sync(rows)

    def _show(self, jobs: Sequence[BadJob]) -> None:
        table = self.query_one(BadTable)
        self._shown_worker_width = self._worker_width
        self.rows = {self._job_key(j): j for j in jobs}
        rows: list[tuple[str, Cells]] = []
        for key, j in self.rows.items():
            env = j.envelope
            rows.append(
                (
                    key,
                    (
                        Text(clock(j.at)),
                        Text(printable(j.job_type), style="bold"),
                        Text(short_id(j.job_id), style="" if env else "red"),
                        Text("" if env is None else str(env.account_id), justify="right"),
                        Text(str(j.attempt), justify="right"),
                        Text(clipped(j.worker, self._worker_width), style="dim"),
                        Text(
                            clipped(last_line(j.reason), 70),
                            style="red" if self.which == "dead" else "yellow",
                        ),
                    ),
                )
            )
        table.sync(rows)
        self._titles()
        self._preview()

    @property
    def _worker_width(self) -> int:
        return max(10, min(28, self.app.size.width // 6))

    def on_resize(self) -> None:
        if self._shown_worker_width != self._worker_width and self.rows:
            self.query_one(BadTable).reset()  # auto-width columns only grow: start over
            self._show(list(self.rows.values()))

    def _titles(self) -> None:
        ctx = console_of(self)
        scope = printable(self.job_type) if self.job_type else "all types"
        total = self._total(ctx.snapshot)
        query = ctx.scope.query
        what = "Dead jobs" if self.which == "dead" else "Failed jobs (most recent kept per type)"
        title = Text(f"{what} · {scope} · ")
        if query is not None:
            matching = sum(g.count for g in self.groups.values())  # every loaded job that fits the filter
            title.append(f"{count(matching)} of {count(total) if total is not None else '?'} match ")
            title.append(printable(str(query)), "bold yellow")
        else:
            title.append(count(total) if total is not None else "?")
        other = "failed" if self.which == "dead" else "dead"
        read_only = ctx.settings.read_only
        if self.showing_groups:
            title.append(f" · {count(len(self.groups))} cause(s)" if self.groups else "")
            actions = hint(BAD, read_only, ["requeue(False)", "purge(False)"])
            sub = f"largest first · enter: its jobs · g: every job · tab: {other}"
        else:
            shown = len(self.rows)
            if self.group is not None:  # the group says it all: its type, its cause, how many
                label = clip(printable(self.group.label), 50)
                kind = "Dead" if self.which == "dead" else "Failed"
                title = Text(f"{kind} jobs of group {self.group.key} · {printable(self.group.job_type)} · ")
                title.append(f"{label} ({count(len(self.listed))})", "bold")
            actions = hint(BAD, read_only, ["requeue(False)", "purge(False)"])
            more = f"newest {count(shown)} shown" if len(self.listed) > shown else "newest first"
            back = "escape: the groups" if self.group is not None else "g: by cause"
            sub = f"{more} · {back} · tab: {other}"
        for table in (self.query_one(GroupTable), self.query_one(BadTable)):
            table.border_title = title
            table.border_subtitle = sub + (f" · {actions}" if actions else "")

    @on(DataTable.RowHighlighted, "#bad")
    @on(DataTable.RowHighlighted, "#groups")
    def _preview(self) -> None:
        pane = self.query_one("#reason", Static)
        if self.showing_groups:
            group = self.selected_group()
            if group is None:
                pane.update(Text(self._nothing(), "dim"))
                return
            t = Text(f"group {group.key} · {count(group.count)} job(s) · newest {clock(group.newest)}Z · ", "bold")
            t.append(f"{printable(group.label)}\n", "bold")
            t.append("the newest of them:\n", "dim")
            t.append_text(describe_bad(group.example, self.which))
            pane.update(t)
            return
        job = self.selected()
        if job is None:
            pane.update(Text(self._nothing(), "dim"))
            return
        pane.update(describe_bad(job, self.which))

    def _nothing(self) -> str:
        of_type = f" of type {printable(self.job_type)}" if self.job_type else ""
        matching = " matching the filter" if console_of(self).scope.query is not None else ""
        return f"no {self.which} jobs{of_type}{matching}"

    def selected(self) -> BadJob | None:
        key = self.query_one(BadTable).selected_key
        return self.rows.get(key) if key else None

    def selected_group(self) -> FailureGroup | None:
        key = self.query_one(GroupTable).selected_key
        return self.groups.get(key) if key else None

    # ---- actions ----------------------------------------------------------

    def action_back(self) -> None:
        if self.group is not None:
            self.group = None
            self._mode()
            self._narrow()
            return
        self.dismiss()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(console_of(self).settings.read_only))

    def action_reload(self) -> None:
        self.reload()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_grouping(self) -> None:
        """Groups ⇄ every job, keeping what was looked at under the cursor: from a group,
        the newest of its jobs (the one its pane showed); from a job, its group."""
        looked_at = self.selected_group() if self.showing_groups else self.selected()
        self.grouped = not self.grouped
        self.group = None
        self._mode()
        self._narrow()
        if isinstance(looked_at, FailureGroup):
            self._put_cursor(self.query_one(BadTable), self._job_key(looked_at.example))
        elif looked_at is not None and self.showing_groups:
            key = next((k for k, jobs in self.triaged.members.items() if looked_at in jobs), None)
            self._put_cursor(self.query_one(GroupTable), key)

    def _put_cursor(self, table: LiveTable, key: str | None) -> None:
        """The cursor on row ``key`` (else the first row), scrolled into view once laid out."""
        rows = table._order
        table.move_cursor(row=rows.index(key) if key in rows else 0, animate=False, scroll=False)
        self.call_after_refresh(lambda: table.move_cursor(row=table.cursor_row, animate=False, scroll=True))
        self._preview()

    @staticmethod
    def _job_key(job: BadJob) -> str:
        return f"{job.job_type}\x1f{job.id}"

    def action_switch(self) -> None:
        self.which = "failed" if self.which == "dead" else "dead"
        self.group = None
        self.loaded = []
        self.query_one(BadTable).sync([])
        self.query_one(GroupTable).sync([])
        self.rows = {}
        self._mode()
        self._apply(Triage())  # nothing loaded yet
        self.reload()

    def action_type_filter(self) -> None:
        snap = console_of(self).snapshot
        names = sorted(snap.stats.types) if snap else []
        options: list[str | None] = [None, *names]
        i = options.index(self.job_type) if self.job_type in options else 0
        self.job_type = options[(i + 1) % len(options)]
        self.group = None
        self._mode()
        scope = printable(self.job_type) if self.job_type else "all types"
        self.notify(f"showing {self.which} jobs of {scope}", timeout=2, markup=False)
        self.reload()

    @on(DataTable.RowSelected, "#groups")
    def _drill(self) -> None:
        group = self.selected_group()
        if group is not None:
            self.group = group
            self._mode()
            self._narrow()

    @on(DataTable.RowSelected, "#bad")
    def _open(self) -> None:
        job = self.selected()
        if job is None:
            return

        def after(result: str | None) -> None:
            if result == "requeue":
                self.action_requeue(False)
            elif result == "purge":
                self.action_purge(False)

        self.app.push_screen(JobDetailScreen(job, self.which), after)

    def _targets(self) -> dict[str, int]:
        """Types to act on for 'all' (no filter, no group), with how many jobs each holds."""
        snap = console_of(self).snapshot
        if snap is None:
            return {}
        out = {}
        for name, t in sorted(snap.stats.types.items()):
            n = t.dead if self.which == "dead" else t.failed_kept
            if n and self.job_type in (None, name):
                out[name] = n
        return out

    def action_requeue(self, everything: bool) -> None:
        self._act("requeue", everything)

    def action_purge(self, everything: bool) -> None:
        self._act("purge", everything)

    def _act(self, what: Literal["requeue", "purge"], everything: bool) -> None:
        """Requeue or purge the job or group under the cursor, or everything listed: always
        after a question that names what (``r`` is refresh on the main screen)."""
        if console_of(self).refuse_if_read_only(what):
            return
        if not everything and self.showing_groups:
            group = self.selected_group()
            if group is None:
                self.notify(f"no {self.which} group selected", severity="warning")
            else:
                self._confirm(what, {group.job_type: group.count}, {group.job_type: list(group.refs)}, group=group)
            return
        if not everything:
            job = self.selected()
            if job is None:
                self.notify(f"no {self.which} job selected", severity="warning")
            else:
                self._confirm(what, {job.job_type: 1}, {job.job_type: [job.id]}, job)
            return
        if console_of(self).scope.query is not None or self.group is not None:
            # Narrowed: exactly the jobs listed, by id (not whole types).
            ids: dict[str, list[str]] = {}
            for j in self.listed:
                ids.setdefault(j.job_type, []).append(j.id)
            if not ids:
                self.notify(f"no {self.which} jobs listed to {what}", severity="warning")
                return
            self._confirm(what, {t: len(v) for t, v in ids.items()}, ids)
            return
        targets = self._targets()
        if not targets:
            self.notify(f"no {self.which} jobs to {what}", severity="warning")
            return
        self._confirm(what, targets)

    def _confirm(
        self,
        what: str,
        counts: dict[str, int],
        ids: dict[str, list[str]] | None = None,
        job: BadJob | None = None,
        group: FailureGroup | None = None,
    ) -> None:
        total = sum(counts.values())
        per_type = ", ".join(f"{clipped(t, 40)} {count(n)}" for t, n in counts.items())
        if job is not None:
            question = f"{what.capitalize()} this {self.which} job?\n{name_bad(job, self.which)}"
            which_one = f"job {short_id(job.job_id)}" if job.job_id else f"entry {clipped(job.id, 40)}"
            done = f"{self.which} {clipped(job.job_type, 40)} {which_one}"
        elif group is not None:
            question = (
                f"{what.capitalize()} the {count(total)} {self.which} {printable(group.job_type)} job(s) "
                f"of group {group.key}?\n  {clip(printable(group.label), 58)}\n"
                f"  newest {clock(group.newest)}Z"
            )
            done = f"{self.which} {clipped(group.job_type, 40)} job(s) of group {group.key}"
        else:
            question = f"{what.capitalize()} {count(total)} {self.which} job(s) ({per_type})?"
            done = f"{self.which} job(s) ({per_type})"
        one = job is not None
        if what == "purge":
            question += f"\n{'It is' if one else 'They are'} deleted for good: this cannot be undone."
            yes, no = ("Yes, purge it for good", "Keep it") if one else (f"Yes, purge {count(total)}", "Keep them")
        else:
            question += "\nIt goes back on its queue." if one else "\nThey go back on their queues."
            yes = "Yes, requeue it" if one else f"Yes, requeue {count(total)}"
            no = f"Leave {'it' if one else 'them'} {self.which}"
        plan: dict[str, list[str] | None] = dict(ids) if ids else dict.fromkeys(counts)

        def answered(answer: bool | None) -> None:
            if answer:
                self._run(what, plan, done)

        self.app.push_screen(ConfirmScreen(question, yes=yes, no=no, danger=what == "purge"), answered)

    @work(group="bad-action", exit_on_error=False)
    async def _run(self, what: str, plan: dict[str, list[str]] | dict[str, list[str] | None], about: str) -> None:
        which = self.which
        try:
            n = await console_of(self).act_on_bad(what, which, dict(plan))
        except Exception as exc:
            self.notify(f"{what} of {about} failed: {printable(exc)}", severity="error", markup=False)
            return
        done = "requeued" if what == "requeue" else "purged"
        # What was acted on, by name; the count says how many of it were still there.
        self.notify(f"{done} {about} ({count(n)} job{'' if n == 1 else 's'})", title=done.capitalize(), markup=False)
        self.post_message(PollNow())
        self.reload()
