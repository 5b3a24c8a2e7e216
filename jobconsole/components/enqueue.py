"""The enqueue modal: type, count, args checked against the type's schema as you type, identity.

It starts from what it held when it last closed (the app's ``enqueue_draft``), with the
cursor in a text field: on the type list, typing would open the list.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static, TextArea

import jobcore
from jobcore import Identity, Job
from jobcore.display import printable
from jobcore.schema import check_args, describe

from ..context import EnqueueDraft
from ..keys import ENQUEUE, bindings
from .base import Keyed, console_of

MAX_COUNT = 100_000
INT64 = 2**63


def example_args(schema: dict[str, Any]) -> dict[str, Any]:
    """Defaults where the schema has them, a plausible value where a field is required."""
    out: dict[str, Any] = {}
    for name, kind, required, default in describe(schema):
        if default is not None:
            out[name] = default
        elif required:
            out[name] = {"integer": 1, "number": 1.0, "boolean": False, "array": [], "object": {}}.get(kind, "")
    return out


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    """Top-level properties, following one $ref the way jobcore.schema.describe does."""
    target = schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = schema.get("$defs", {}).get(ref.rsplit("/", 1)[1], schema)
    props = target.get("properties", {})
    return props if isinstance(props, dict) else {}


def schema_hint(schema: dict[str, Any] | None) -> str:
    if schema is None:
        return "no args schema known for this type (no worker has served it): args are sent unchecked"
    fields = describe(schema)
    if not fields:
        return "takes no args fields"
    props = _properties(schema)
    parts = []
    for name, kind, required, default in fields:
        text = f"{name}: {kind}"
        spec = props.get(name, {})
        low, high = spec.get("minimum"), spec.get("maximum")
        if low is not None or high is not None:
            text += f" {'' if low is None else low}..{'' if high is None else high}"
        if required:
            text += " (required)"
        elif default is not None:
            text += f" = {json.dumps(default)}"
        parts.append(text)
    return "fields: " + ", ".join(parts)


TEXT_FIELDS = ("count", "account_id", "account_number", "org_id")  # the draft keeps them as typed

# ctrl+a selects the whole field (Textual's is "line start", which home does too).
SELECT_ALL = Binding("ctrl+a", "select_all", "Select all", show=False)


async def in_order(field: Widget, event: events.Key) -> None:
    """Run the field's own key binding (ctrl+a, end, backspace...) as its key arrives.
    Textual runs it once the key has bubbled up to the app, after the characters typed
    behind it went in: typed fast, they would land before the cursor moved."""
    for key in event.aliases:
        for binding in field._bindings.key_to_bindings.get(key, []):
            if field.check_action(binding.action, ()) is not False and await field.app.run_action(
                binding.action, field
            ):
                event.stop()
                event.prevent_default()  # not again by the base class, nor by the app
                return


class FormInput(Input):
    BINDINGS = [SELECT_ALL]

    async def _on_key(self, event: events.Key) -> None:
        await in_order(self, event)


class FormArea(TextArea):
    BINDINGS = [SELECT_ALL]

    async def _on_key(self, event: events.Key) -> None:
        await in_order(self, event)


class EnqueueScreen(Keyed, ModalScreen[tuple[str, int] | None]):
    """Dismisses with (job type, count) once the jobs are sent."""

    KEYS = ENQUEUE
    BINDINGS = bindings(ENQUEUE)

    def __init__(self, job_type: str | None = None) -> None:
        super().__init__()
        self.initial_type = job_type
        self.schemas: dict[str, dict[str, Any]] = {}
        self.sources: dict[str, str] = {}
        self.sending = False
        self._last_type: str | None = None
        self._args: dict[str, str] = {}  # per job type, as typed: switching type and back keeps them

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="enqueue"):
            yield Static(Text("Enqueue test jobs", style="bold"), classes="title")
            with Horizontal(classes="row"):
                yield Label("job type", classes="label")
                yield Select[str]([], id="type", allow_blank=True, prompt="pick a type", compact=True)
                yield Label("count", classes="label short")
                yield FormInput("1", id="count", type="integer", compact=True, max_length=7)
            yield Label("args (JSON object)", classes="label wide")
            yield FormArea("{}", id="args", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
            yield Static("", id="hint")
            yield Static("", id="error")
            with Horizontal(classes="row"):
                yield Label("account_id", classes="label")
                yield FormInput("0", id="account_id", type="integer", compact=True, max_length=20)
                yield Label("account_number", classes="label mid")
                yield FormInput("", id="account_number", compact=True, placeholder="e.g. 1234-5678")
                yield Label("org_id", classes="label short")
                yield FormInput("", id="org_id", compact=True, placeholder="e.g. org-1")
            with Horizontal(classes="buttons"):
                yield Button("Enqueue (ctrl+s)", id="send", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        app = console_of(self)
        for job_type in app.handlers.types:
            self.schemas[job_type] = app.handlers.get(job_type).schema()
            self.sources[job_type] = f"from {app.settings.handlers}"
        draft = app.enqueue_draft
        self._args = dict(draft.args)
        for name in TEXT_FIELDS:
            self.query_one(f"#{name}", Input).value = getattr(draft, name)
        preset = self.initial_type or draft.job_type
        self.initial_type = preset
        known = list(app.snapshot.stats.types) if app.snapshot else []
        self._set_types(known + ([preset] if preset else []))
        self._type_changed()  # now, not when Select's message comes: keys typed by then would be lost
        # A text field first: typing on the type list opens it. With the type known, its args.
        self.query_one("#args" if preset else "#count").focus()
        self._load_types()

    def action_field(self, step: int) -> None:
        if step > 0:
            self.focus_next()
        else:
            self.focus_previous()

    def remember(self) -> None:
        """Keep the fields for the next opening (this session only)."""
        job_type = self.job_type
        if job_type is not None:
            self._args[job_type] = self.query_one("#args", TextArea).text
        fields = {name: self.query_one(f"#{name}", Input).value for name in TEXT_FIELDS}
        console_of(self).enqueue_draft = EnqueueDraft(job_type=job_type, args=dict(self._args), **fields)

    @work(exclusive=True, exit_on_error=False)
    async def _load_types(self) -> None:
        """Types and schemas as Redis knows them; workers' published schemas win over local ones."""

        try:
            types, schemas = await console_of(self).job_types_and_schemas()
        except Exception as exc:
            self._show_error(f"cannot read job types from the server: {printable(exc)}")
            return
        for job_type, schema in schemas.items():
            self.schemas[job_type] = schema
            self.sources[job_type] = "published by a worker"
        self._set_types(types)
        self._show_hint()
        self.validate()

    def _set_types(self, extra: list[str]) -> None:
        select: Select[str] = self.query_one("#type", Select)
        current = select.value if isinstance(select.value, str) else self.initial_type
        names = sorted(set(self.schemas) | set(extra))
        select.set_options([(Text(printable(n)), n) for n in names])  # names from Redis: never markup
        if current in names:
            select.value = current
        elif names and select.value is Select.NULL:
            select.value = "sleep" if "sleep" in names else names[0]

    # ---- validation -------------------------------------------------------

    @property
    def job_type(self) -> str | None:
        value = self.query_one("#type", Select).value
        return value if isinstance(value, str) else None

    @on(Select.Changed, "#type")
    def _type_changed(self) -> None:
        job_type = self.job_type
        if job_type is None or job_type == self._last_type:
            return
        args = self.query_one("#args", TextArea)
        if self._last_type is not None:
            self._args[self._last_type] = args.text
        self._last_type = job_type
        schema = self.schemas.get(job_type)
        typed = self._args.get(job_type)
        args.text = typed if typed is not None else json.dumps(example_args(schema) if schema else {})
        self._show_hint()
        self.validate()

    def _show_hint(self) -> None:
        job_type = self.job_type
        if job_type is None:
            return
        schema = self.schemas.get(job_type)
        source = self.sources.get(job_type, "")
        hint = schema_hint(schema) + (f"  [{source}]" if schema else "")
        self.query_one("#hint", Static).update(Text(printable(hint), style="dim"))  # a published schema is data

    @on(TextArea.Changed)
    @on(Input.Changed)
    def _edited(self) -> None:
        self.validate()

    def _show_error(self, message: str) -> None:
        error = self.query_one("#error", Static)
        error.update(Text(f"✖ {printable(message)}", style="bold red") if message else "")
        error.set_class(bool(message), "-error")

    def validate(self) -> tuple[list[Job[Any]] | None, str]:
        """The jobs to send, or None and the first problem (also shown under the args)."""
        jobs, problem = self._check()
        if problem:
            self._show_error(problem)
        else:
            job_type = self.job_type or ""
            how = "fit its schema" if job_type in self.schemas else "are valid JSON (no schema to check)"
            self.query_one("#error", Static).update(Text(f"✓ args {how}", style="green"))
            self.query_one("#error").set_class(False, "-error")
        send = self.query_one("#send", Button)
        send.disabled = bool(problem) or self.sending
        n = self._count()
        label = f"Enqueue {n:,} job{'s' if n != 1 else ''} (ctrl+s)" if n else "Enqueue (ctrl+s)"
        if str(send.label) != label:
            send.label = label
            send.refresh(layout=True)  # a Button sizes itself to its label only at layout
        return jobs, problem

    def _count(self) -> int:
        try:
            return int(self.query_one("#count", Input).value)
        except ValueError:
            return 0

    def _check(self) -> tuple[list[Job[Any]] | None, str]:
        job_type = self.job_type
        if not job_type:
            return None, "pick a job type"
        text = self.query_one("#args", TextArea).text
        try:
            args = json.loads(text) if text.strip() else None
        except json.JSONDecodeError as exc:
            return None, f"args are not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        if not isinstance(args, dict):
            return None, 'args must be a JSON object, like {"seconds": 1}'
        schema = self.schemas.get(job_type)
        if schema is not None:
            try:
                check_args(job_type, args, schema)
            except jobcore.ArgsError as exc:
                return None, str(exc)
        n = self._count()
        if not 1 <= n <= MAX_COUNT:
            return None, f"count must be 1 to {MAX_COUNT:,}"
        raw_account = self.query_one("#account_id", Input).value.strip() or "0"
        try:
            account_id = int(raw_account)
        except ValueError:
            return None, f"account_id must be a whole number, got {raw_account!r}"
        if not -INT64 <= account_id < INT64:
            return None, "account_id does not fit in 64 bits"
        identity = Identity(
            account_number=self.query_one("#account_number", Input).value.strip(),
            org_id=self.query_one("#org_id", Input).value.strip(),
        )
        # One Job now only as a template: the I/O side builds all n (cheap, off the UI).
        return [Job(type=job_type, args=args, account_id=account_id, identity=identity)], ""

    # ---- sending ----------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "send":
            self.action_send()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        if not self.sending:
            self.remember()
            self.dismiss(None)

    def action_send(self) -> None:
        if self.sending:
            return
        jobs, _ = self.validate()
        if jobs is None:
            self.app.bell()
            return
        self._send(jobs[0], self._count())

    @work(exclusive=True, exit_on_error=False)
    async def _send(self, template: Job[Any], n: int) -> None:
        self.sending = True
        self.query_one("#send", Button).disabled = True
        self.query_one("#error", Static).update(Text(f"sending {n:,} job(s)…", style="bold"))

        try:
            sent = await console_of(self).enqueue_copies(template, n)
        except Exception as exc:  # EnqueueError, ArgsError, a dropped connection: say so, keep the form
            self.sending = False
            self._show_error(f"not enqueued: {exc}")
            self.query_one("#send", Button).disabled = False
            return
        self.sending = False
        self.remember()
        self.dismiss((template.type, sent))
