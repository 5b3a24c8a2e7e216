"""What may be shown to a person: text read from Redis, queue URLs, durations.

Type names, reasons, tracebacks, args and identity fields come from Redis, so
from anyone who can write there. The CLI, the console and the text logs show
them through :func:`printable` (never as markup, never raw escapes); every URL
printed or logged goes through :func:`redacted_url`, every span of time through
:func:`duration`. JSON output stays exact.

Any of them may be huge (20 MB of args, a reason, an org_id): a view shows a
bounded :func:`preview` (or a :func:`clipped` cell), cut *before* it is escaped or
laid out, saying how much there was and where to read it all.
"""

from __future__ import annotations

import unicodedata

from jobcore.url import redacted

# Categories shown escaped: controls (ESC, CR, C1 CSI...), format characters
# (bidi overrides that reorder a line), surrogates, line/paragraph separators.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

PREVIEW_CHARS = 4000  # of one value (args, a reason, a log line) a view lays out: 20 MB froze a screen
FIELD_CHARS = 64  # of one field (account_number, org_id, a worker id) a row shows


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except ValueError:  # an int past Python's 4,300-digit str() limit, read from Redis
        return f"<{type(value).__name__} too large to show>"


def printable(text: object, *, multiline: bool = False) -> str:
    """``text`` as it may reach a terminal, a table or a log line: control and
    other invisible characters escaped the way Python writes them (``\\x1b``,
    ``\\n``, ``\\u202e``). With ``multiline`` (a traceback, pretty JSON) line
    breaks and tabs stay; a carriage return never does (it overwrites a line)."""
    s = _text(text)
    if s.isprintable():  # the usual case, in C
        return s
    out = []
    for ch in s:
        if ch.isprintable() or (multiline and ch in "\n\t"):
            out.append(ch)
        elif unicodedata.category(ch) in _HIDDEN:
            out.append(_escape(ch))
        else:
            out.append(ch)  # other spaces, private use, unassigned: shown as they are
    return "".join(out)


def field_text(value: object, width: int | None = None) -> str:
    """A job's field (account_number, org_id, reservation_id, ...) as every view shows it:
    empty when the job has none (None or ""), else printable. One rendering for the
    console, the CLI and the text logs (``reservation_id=``, logfmt's empty value).
    With ``width``: :func:`clipped` to it (a table's cell)."""
    if value is None or value == "":
        return ""
    return printable(value) if width is None else clipped(value, width)


def clipped(value: object, width: int) -> str:
    """``printable(value)`` in at most ``width`` characters, the last one "…" when cut.
    Cut before escaping: a 20 MB value costs what ``width`` characters cost."""
    s = _text(value)
    out = printable(s[: width + 1])
    return out if len(out) <= width else out[: max(0, width - 1)] + "…"


def size(n: int) -> str:
    """A number of bytes as a person reads it: 900 B, 12 KB, 3.5 MB, 20 MB (powers of 1024)."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            v = n / scale
            return f"{v:.1f} {unit}" if v < 10 else f"{v:,.0f} {unit}"
    return f"{n} B"


def preview(value: object, limit: int = PREVIEW_CHARS, *, multiline: bool = False, whole: str = "") -> str:
    """``printable(value)``, or when longer than ``limit`` characters its first ``limit``
    and what was left out: "… 20 MB in all, `jobcore find ID --json` for all" (``whole``
    names the command). Cut before escaping, so a huge value never is escaped or laid out."""
    s = _text(value)
    if len(s) <= limit:
        return printable(s, multiline=multiline)
    total = size(len(s.encode("utf-8", "surrogatepass")))
    where = f", `{whole}` for all" if whole else ""
    return f"{printable(s[:limit], multiline=multiline)}… {total} in all{where}"


# A URL as it may be printed or logged: jobcore.url's one rule, under the name users import.
redacted_url = redacted


def duration(seconds: float | None) -> str:
    """A span of time as every view shows it: 0.4s, 12.3s, 4m05s, 2h03m, 3d04h;
    "-" when there is none."""
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    if s < 60:
        return f"{s:.1f}s"
    whole = int(s)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def scrubbed(text: str, url: str) -> str:
    """An error message that may quote ``url`` (as is or as its repr), with the
    URL redacted."""
    safe = redacted_url(url)
    for form in (url, repr(url)[1:-1]):
        if form:
            text = text.replace(form, safe)
    return text
