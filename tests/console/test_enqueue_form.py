"""The enqueue form as a person types into it (issue 19 item 18): where the cursor starts,
what it remembers between openings, ctrl+a, and keys typed fast across Tab."""

from __future__ import annotations

import unicodedata
from typing import Any

from textual import events
from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key
from textual.pilot import Pilot
from textual.widgets import Input, Select, TextArea

from jobconsole.app import JobConsole
from jobconsole.components.enqueue import EnqueueScreen
from jobconsole.components.main_screen import MainScreen
from jobcore import Job
from jobcore.model import decode_envelope

from .conftest import fresh_snapshot, press, wait_for
from .test_console import console, queues


def burst(pilot: Pilot[Any], *keys: str) -> None:
    """Every key handed to the driver at once, as a fast typist (or a paste) does:
    no pause in between for the screen to catch up. A word stands for its letters."""
    app = pilot.app
    assert app._driver is not None
    for item in keys:
        for key in [item] if len(item) == 1 or "+" in item or item in ("tab", "end", "backspace") else list(item):
            name = _character_to_key(key) if len(key) == 1 and not key.isalnum() else key
            try:
                char: str | None = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(name, name)))
            except KeyError:
                char = name if len(name) == 1 else None
            event = events.Key(name, char)
            event.set_sender(app)
            app._driver.send_message(event)


async def open_form(pilot: Pilot[Any]) -> EnqueueScreen:
    app = pilot.app
    await press(pilot, "e")
    await wait_for(pilot, lambda: isinstance(app.screen, EnqueueScreen), what="the enqueue form")
    screen = app.screen
    assert isinstance(screen, EnqueueScreen)
    select: Select[str] = screen.query_one("#type", Select)
    await wait_for(pilot, lambda: "launch" in [v for _, v in select._options], what="the job types")
    return screen


def values(form: EnqueueScreen) -> dict[str, str]:
    out = {
        name: form.query_one(f"#{name}", Input).value for name in ("count", "account_id", "account_number", "org_id")
    }
    out["args"] = form.query_one("#args", TextArea).text
    out["type"] = str(form.query_one("#type", Select).value)
    return out


async def closed(pilot: Pilot[Any]) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen), what="the form to close")


async def test_the_cursor_starts_on_a_text_field_so_typing_never_opens_the_type_list() -> None:
    async with console("memory://") as (pilot, app, _):
        form = await open_form(pilot)
        assert app.focused is form.query_one("#count", Input)
        burst(pilot, "ctrl+a", "3")
        await wait_for(pilot, lambda: form.query_one("#count", Input).value == "3", what="count 3")
        assert not form.query_one("#type", Select).expanded
        await press(pilot, "escape")
        await closed(pilot)


async def test_with_its_type_preset_the_cursor_starts_in_the_args() -> None:
    async with console("memory://") as (pilot, app, q):
        await q.enqueue_many([Job(type="launch", args={"reservation_id": 1})])
        await fresh_snapshot(pilot)
        table = queues(app)
        table.focus()
        table.move_cursor(row=table.get_row_index("type:launch"))
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EnqueueScreen))
        form = app.screen
        assert isinstance(form, EnqueueScreen)
        assert app.focused is form.query_one("#args", TextArea)
        assert form.query_one("#type", Select).value == "launch"


async def test_ctrl_a_selects_the_whole_field_so_typing_replaces_it() -> None:
    async with console("memory://") as (pilot, _, _q):
        form = await open_form(pilot)
        count = form.query_one("#count", Input)
        args = form.query_one("#args", TextArea)
        await press(pilot, "end", "2", "5")
        assert count.value == "125"
        await press(pilot, "ctrl+a", "4")
        assert count.value == "4"
        await press(pilot, "tab")
        assert pilot.app.focused is args
        await press(pilot, "ctrl+a", "backspace")
        assert args.text == ""
        await press(pilot, "ctrl+a", "{", "}")
        assert args.text == "{}"


async def test_keys_typed_fast_across_tab_land_in_the_field_tab_moved_to(url: str) -> None:
    async with console(url) as (pilot, _app, q):
        form = await open_form(pilot)
        form.query_one("#type", Select).value = "launch"
        await pilot.pause()
        form.query_one("#count", Input).focus()
        await pilot.pause()
        burst(
            pilot,
            "ctrl+a",
            "2",
            "tab",
            "ctrl+a",
            '{"reservation_id": 77, "step_seconds": 0}',
            "tab",
            "ctrl+a",
            "42",
            "tab",
            "A-423",
            "backspace",  # in turn: before the 5 goes in, not after
            "5",
            "tab",
            "org-7",
            "shift+tab",
            "shift+tab",
            "end",
            "9",
        )
        want = {
            "count": "2",
            "args": '{"reservation_id": 77, "step_seconds": 0}',
            "account_id": "429",
            "account_number": "A-425",
            "org_id": "org-7",
            "type": "launch",
        }
        try:
            await wait_for(pilot, lambda: values(form) == want, timeout=5)
        except AssertionError:
            assert values(form) == want
        await press(pilot, "ctrl+s")
        await closed(pilot)
        await q.register_types({"launch": {}})
        got = await q.fetch("check", ["launch"], 5, 0)
        assert len(got) == 2
        env = decode_envelope(got[0].raw or b"")
        assert (env.account_id, env.identity.account_number, env.identity.org_id) == (429, "A-425", "org-7")
        assert env.args_json() == {"reservation_id": 77, "step_seconds": 0}


async def test_the_form_remembers_its_values_between_openings(url: str) -> None:
    async with console(url) as (pilot, app, q):
        form = await open_form(pilot)
        form.query_one("#type", Select).value = "launch"
        await pilot.pause()
        form.query_one("#args", TextArea).text = '{"reservation_id": 5, "step_seconds": 0}'
        form.query_one("#count", Input).value = "3"
        form.query_one("#account_id", Input).value = "42"
        form.query_one("#account_number", Input).value = "A-42"
        form.query_one("#org_id", Input).value = "org-7"
        await pilot.pause()
        sent = values(form)
        await press(pilot, "ctrl+s")
        await closed(pilot)
        assert (await q.stats()).types["launch"].pending == 3

        form = await open_form(pilot)
        assert values(form) == sent
        assert app.focused is form.query_one("#args", TextArea)  # its type is known: straight to the args
        # Another type gets its own args (its example, the first time); the identity stays.
        form.query_one("#type", Select).value = "sleep"
        await pilot.pause()
        assert form.query_one("#args", TextArea).text == '{"seconds": 1.0}'
        form.query_one("#args", TextArea).text = '{"seconds": 0}'
        await pilot.pause()
        await press(pilot, "escape")  # cancelled: what was typed is kept all the same
        await closed(pilot)

        form = await open_form(pilot)
        assert values(form) == {**sent, "type": "sleep", "args": '{"seconds": 0}'}
        form.query_one("#type", Select).value = "launch"
        await pilot.pause()
        assert form.query_one("#args", TextArea).text == sent["args"]
        await press(pilot, "escape")
        await closed(pilot)
        assert isinstance(app, JobConsole)
