"""The explicit handler registry: the only way a job type maps to code."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from jobcore.errors import UnknownJobType
from jobcore.model import Job, UnknownFields, args_schema, field_names
from jobcore.schema import forbid_unknown

Handler = Callable[[Job[Any]], Awaitable[None] | None]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True, slots=True)
class Registration:
    job_type: str
    handler: Handler
    args_type: Any
    is_async: bool
    # "dead": args with fields the type does not know are refused (by the producer
    # and the published schema) and dead-lettered (a typo, or a newer producer ahead
    # of this worker); "ignore": they are dropped, as msgspec would.
    unknown_fields: UnknownFields = "dead"

    @property
    def known_fields(self) -> tuple[str, ...] | None:
        """The args fields this type takes, in order; None when any field goes."""
        return field_names(self.args_type, self.unknown_fields)

    def schema(self) -> dict[str, Any]:
        """The args schema workers publish: ``additionalProperties: false`` when
        unknown fields are refused."""
        schema = args_schema(self.args_type)
        return schema if self.known_fields is None else forbid_unknown(schema)

    def schema_hash(self) -> str:
        """A short fingerprint of the args schema: workers that disagree show it."""
        text = json.dumps(self.schema(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(text.encode()).hexdigest()[:12]


class Handlers:
    """Maps job types to handlers and the args type each one decodes into."""

    def __init__(self) -> None:
        self._by_type: dict[str, Registration] = {}

    def register(
        self, job_type: str, handler: Handler, args_type: Any, *, unknown_fields: UnknownFields = "dead"
    ) -> None:
        if not job_type or not isinstance(job_type, str):
            raise ValueError("job_type must be a non-empty string")
        if job_type in self._by_type:
            raise ValueError(f"a handler for job type {job_type!r} is already registered")
        if not callable(handler):
            raise TypeError(f"handler for {job_type!r} is not callable")
        if unknown_fields not in ("dead", "ignore"):
            raise ValueError("unknown_fields must be 'dead' or 'ignore'")
        # Fail at registration, not at the first job, when msgspec cannot handle the type.
        args_schema(args_type)
        self._by_type[job_type] = Registration(
            job_type=job_type,
            handler=handler,
            args_type=args_type,
            is_async=inspect.iscoroutinefunction(handler),
            unknown_fields=unknown_fields,
        )

    def handler(self, job_type: str, args_type: Any, *, unknown_fields: UnknownFields = "dead") -> Callable[[H], H]:
        def decorate(fn: H) -> H:
            self.register(job_type, fn, args_type, unknown_fields=unknown_fields)
            return fn

        return decorate

    def get(self, job_type: str) -> Registration:
        try:
            return self._by_type[job_type]
        except KeyError:
            raise UnknownJobType(f"no handler registered for job type {job_type!r}") from None

    def args_type(self, job_type: str) -> Any:
        return self.get(job_type).args_type

    def __contains__(self, job_type: object) -> bool:
        return job_type in self._by_type

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_type)

    def __len__(self) -> int:
        return len(self._by_type)

    @property
    def types(self) -> list[str]:
        return sorted(self._by_type)

    def schemas(self) -> dict[str, dict[str, Any]]:
        return {t: r.schema() for t, r in sorted(self._by_type.items())}


def load_handlers(spec: str) -> Handlers:
    """Import the ``MODULE:ATTRIBUTE`` registry named by an operator (a command-line
    option). Never called with anything read from Redis. Raises ValueError."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"handlers must be MODULE:ATTRIBUTE (e.g. jobcore.demo:handlers), got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import handlers module {module_name!r}: {exc}") from None
    if not hasattr(module, attr):
        found = sorted(n for n, v in vars(module).items() if isinstance(v, Handlers))
        hint = f" (its registries: {', '.join(found)})" if found else " (it defines no jobcore.Handlers registry)"
        raise ValueError(f"module {module_name!r} has no {attr!r}{hint}")
    handlers = getattr(module, attr)
    if not isinstance(handlers, Handlers):
        raise ValueError(f"{spec} is a {type(handlers).__name__}, not a jobcore.Handlers registry")
    return handlers
