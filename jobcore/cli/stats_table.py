"""``jobcore stats``'s table, laid out by hand so that no cell ever wraps: one row
a line, short headers, a paused or fair type said in a ``state`` column. On a terminal too
narrow for it the type names are cut with … (the columns of numbers never are);
piped, every row is whole, however wide."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobcore.display import duration, printable, redacted_url
from jobcore.records import QueueStats, TypeStats

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

TYPE_MIN = 6  # a type name is cut no shorter than this (then the line runs wider)


@dataclass
class _Column:
    header: str
    right: bool = True
    cells: list[Text] = field(default_factory=list)

    def width(self) -> int:
        return max([len(self.header), *(c.cell_len for c in self.cells)])


def failed_cell(failed: int, kept: int) -> str:
    """Failures counted, and how many of them the failed list still holds when that differs."""
    return str(failed) if kept == failed else f"{failed} ({kept} kept)"


def _state(t: TypeStats) -> Text:
    """What an operator must know of a type before reading its numbers: paused, fair."""
    from rich.text import Text

    state = Text()
    if t.paused:
        state.append("paused", "yellow")
    if t.fair:
        state.append(" fair" if t.paused else "fair", "cyan")
    return state


def stats_table(
    stats: QueueStats, url: str, topology: str, partition_rows: bool, width: int | None = None
) -> list[Text]:
    """The title, the header, the rows and the total, one Text a line; with
    ``width`` (a terminal's), type names cut with … so the lines fit it."""
    from rich.text import Text

    types = sorted(stats.types.values(), key=lambda t: t.job_type)
    split = any(t.partitions > 1 for t in types)
    marked = any(t.paused or t.fair for t in types)
    names = ["type", *(["state"] if marked else []), *(["parts"] if split else [])]
    names += ["pending", "in flight", "processed", "failed", "dead", "oldest", "workers"]
    cols = {n: _Column(n, right=n not in ("type", "state")) for n in names}

    def row(**cells: Text | str) -> None:
        for n, col in cols.items():
            cell = cells.get(n.replace(" ", "_"), "")
            col.cells.append(cell if isinstance(cell, Text) else Text(cell))

    for t in types:
        served = Text(str(t.served_by)) if t.served_by else (Text("none", "red") if t.pending else Text("0"))
        row(
            type=Text(printable(t.job_type)),
            state=_state(t),
            parts=str(t.partitions),
            pending=str(t.pending),
            in_flight=str(t.in_flight),
            processed=str(t.processed),
            failed=failed_cell(t.failed, t.failed_kept),
            dead=str(t.dead),
            oldest=duration(t.oldest_pending_age),
            workers=served,
        )
        if partition_rows:
            for p, pending in enumerate(t.pending_by_partition):
                row(type=Text(f"  p{p}", "dim"), pending=str(pending))
    row(
        type=Text("total", "bold"),
        pending=str(stats.pending),
        in_flight=str(stats.in_flight),
        processed=str(stats.processed),
        failed=str(stats.failed),
        dead=str(stats.dead),
    )
    title = Text(printable(f"jobcore at {redacted_url(url)}, {topology} ({stats.workers} live worker(s))"))
    return [title, *_lines(list(cols.values()), width)]


def _lines(cols: Sequence[_Column], width: int | None) -> list[Text]:
    """Header, rule, rows; a rule before the last row (the total). The first
    column (the type) shrinks to fit ``width``, never below TYPE_MIN."""
    from rich.text import Text

    widths = [c.width() for c in cols]
    gap = 2
    if width is not None and sum(widths) + gap * (len(widths) - 1) > width:
        gap = 1  # a narrow terminal: columns closer first, then the type names cut
        excess = sum(widths) + gap * (len(widths) - 1) - width
        if excess > 0 and widths[0] > TYPE_MIN:
            widths[0] = max(TYPE_MIN, widths[0] - excess)
            for cell in cols[0].cells:
                cell.truncate(widths[0], overflow="ellipsis")
    out: list[Text] = []

    def line(cells: Sequence[Text]) -> Text:
        text = Text()
        for i, (c, cell, w) in enumerate(zip(cols, cells, widths, strict=True)):
            if i:
                text.append(" " * gap)
            pad = " " * (w - cell.cell_len)
            text.append_text(Text(pad) + cell if c.right else cell + Text(pad))
        text.rstrip()
        return text

    rule = Text((" " * gap).join("─" * w for w in widths), "dim")
    out.append(line([Text(c.header, "bold") for c in cols]))
    out.append(rule)
    n = len(cols[0].cells)
    for r in range(n):
        if r == n - 1:
            out.append(rule.copy())
        out.append(line([c.cells[r] for c in cols]))
    return out


def print_stats_table(console: Console, stats: QueueStats, url: str, topology: str, partition_rows: bool) -> None:
    """Fitted to a terminal's width; piped, whole rows (nothing wraps or is cut)."""
    width = console.width if console.is_terminal else None
    for t in stats_table(stats, url, topology, partition_rows, width):
        console.print(t, soft_wrap=True, no_wrap=True, overflow="ignore", crop=False)
