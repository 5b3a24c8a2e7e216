"""The operator's side of fairness across accounts (jobcore/fair.py has the
rules): turn a type fair, set limits and weights, read who waits and who runs."""

from __future__ import annotations

import abc

from jobcore.errors import NotFair
from jobcore.fair import FairInfo, account_name
from jobcore.ops.audit import audited


class Fairness(abc.ABC):
    async def check_known(self, *job_types: str) -> None:
        """Raise UnknownJobType for a type never enqueued or served (Operations has it)."""
        raise NotImplementedError

    @abc.abstractmethod
    async def _fair_write(self, job_type: str, fields: dict[str, str]) -> None:
        """Set (or, with "", remove) fields of every partition's fair hash, and put
        back in turn the accounts a raised limit frees (fair_set.lua)."""

    @abc.abstractmethod
    async def _fair_read(self, job_type: str, top: int) -> FairInfo: ...

    @audited("fair")
    async def set_fair(self, job_type: str, fair: bool) -> None:
        """Turn fairness across accounts on or off for ``job_type``: kept in Redis,
        followed by every worker from its next fetch (no restart). Jobs already
        waiting are served either way: turned on, they join their accounts'
        turns; turned off, the accounts' queues are still served, in turn."""
        await self.check_known(job_type)
        await self._fair_write(job_type, {"on": "1" if fair else ""})

    @audited("limit")
    async def set_limit(
        self,
        job_type: str,
        per_account: int | None = None,
        *,
        account: int | None = None,
        max: int | None = None,
        weight: int | None = None,
    ) -> None:
        """At most ``per_account`` of one account's jobs of a fair type run at once,
        across every worker (0: no limit). With ``account``: that account's own
        limit ``max`` (0 removes it, so the type's applies) and ``weight`` (its
        jobs per turn, taken in a row; 1 is everyone's). Raises NotFair when the type is not fair."""
        if not (await self.fair_info(job_type, top=0)).settings.on:
            turn_on = f"`jobcore fair {job_type} on`"
            raise NotFair(f"{job_type} is not fair: limits and weights apply to fair types ({turn_on})")
        fields: dict[str, str] = {}
        if per_account is not None:
            if per_account < 0:
                raise ValueError("per_account must be 0 (no limit) or more")
            fields["limit"] = str(per_account) if per_account else ""
        if (max is not None or weight is not None) and account is None:
            raise ValueError("max and weight are an account's: give account=")
        if account is not None:
            name = account_name(account)
            if max is not None:
                if max < 0:
                    raise ValueError("max must be 0 (the type's limit applies) or more")
                fields[f"m:{name}"] = str(max) if max else ""
            if weight is not None:
                if weight < 1:
                    raise ValueError("weight must be 1 or more")
                fields[f"w:{name}"] = str(weight) if weight > 1 else ""
        if not fields:
            raise ValueError("nothing to set: give per_account, or account with max or weight")
        await self._fair_write(job_type, fields)

    async def fair_info(self, job_type: str, top: int = 5) -> FairInfo:
        """``job_type``'s fairness: its settings, how many accounts wait, the
        ``top`` accounts by jobs waiting and by jobs running, some blocked ones.
        Raises UnknownJobType for a type never enqueued or served."""
        await self.check_known(job_type)
        return await self._fair_read(job_type, top)
