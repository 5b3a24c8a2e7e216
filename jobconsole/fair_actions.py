"""The app's side of fairness across accounts (``a`` on the main screen): read a
type's fairness, and turn it on or off or set its limit after a question."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual import work

from jobcore import FairInfo
from jobcore.display import printable

from .components.confirm import ConfirmScreen
from .components.fairness import FairScreen
from .poller import describe_error

if TYPE_CHECKING:
    import jobcore

    from .app import JobConsole


class FairActions:
    """Mixed into the app (it has the runner, notify, screens and the read-only rule)."""

    @property
    def _app(self) -> JobConsole:
        return cast("JobConsole", self)

    async def _read_fair(self, job_type: str) -> tuple[FairInfo, int]:
        async def read(q: jobcore.Queue) -> tuple[FairInfo, int]:
            info = await q.fair_info(job_type)
            t = (await q.stats()).types.get(job_type)
            return info, t.pending if t else 0

        return await self._app.runner.call(read)

    @work(group="fair", exclusive=True, exit_on_error=False)
    async def open_fair(self, job_type: str) -> None:
        try:
            info, pending = await self._read_fair(job_type)
        except Exception as exc:
            self._app.notify(f"fairness: {printable(describe_error(exc))}", severity="error", markup=False)
            return
        self._app.push_screen(FairScreen(info, pending))

    def ask_fair(self, job_type: str, fair: bool) -> None:
        if self._app.refuse_if_read_only("fairness"):
            return
        name = printable(job_type)
        if fair:
            question = (
                f"Make {name} fair across accounts?\nWorkers take its jobs in turn across the accounts that have "
                "jobs waiting, from their next fetch (jobcore fair " + name + " on)."
            )
            yes, no = "Yes, take turns", "Leave it first in, first out"
        else:
            question = (
                f"Make {name} first in, first out again?\nIts limits no longer apply to new jobs; jobs waiting "
                "their turn now are still handed out in turn."
            )
            yes, no = "Yes, first in, first out", "Leave it fair"

        def answered(ok: bool | None) -> None:
            if ok:
                self._change(job_type, "fair" if fair else "not fair", lambda q: q.set_fair(job_type, fair))

        self._app.push_screen(ConfirmScreen(question, yes=yes, no=no, danger=False), answered)

    def ask_limit(self, job_type: str, per_account: int) -> None:
        if self._app.refuse_if_read_only("the limit"):
            return
        name = printable(job_type)
        what = f"at most {per_account:,} of one account's jobs at once" if per_account else "no limit per account"
        question = f"Set {name} to {what}?\nFollowed by every worker from its next fetch (jobcore limit {name})."

        def answered(ok: bool | None) -> None:
            if ok:
                self._change(job_type, what, lambda q: q.set_limit(job_type, per_account))

        self._app.push_screen(
            ConfirmScreen(question, yes="Yes, set it", no="Leave it as it is", danger=False), answered
        )

    @work(group="control", exit_on_error=False)
    async def _change(self, job_type: str, what: str, change: Any) -> None:
        try:
            await self._app.runner.call(change)
            info, pending = await self._read_fair(job_type)
        except Exception as exc:
            self._app.notify(f"fairness: {printable(describe_error(exc))}", severity="error", markup=False)
            return
        self._app.notify(f"{printable(job_type)}: {what}", title="Fairness", markup=False)
        if isinstance(self._app.screen, FairScreen) and self._app.screen.info.job_type == job_type:
            self._app.screen.show(info, pending)
        self._app.poll_now()
