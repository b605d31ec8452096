"""The terminal output of the CLI: text from people's files is shown, never obeyed by the terminal.

An institution name with ESC sequences could clear the screen, retitle the window or fake a line of output, and
U+202E (right-to-left override) reverses what follows it, so a name can pass as another (issue #18). Every string
the CLI prints goes through `sanitize`: control characters and the invisible format characters of Unicode are
shown as a visible `\\u001b`-style escape instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

# C0 and C1 controls but tab and newline; DEL; bidirectional overrides, isolates and marks; zero-width characters;
# the line and paragraph separators; the byte-order mark used as a zero-width no-break space.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def sanitize(text: str) -> str:
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def data(value: object) -> str:
    """A value from people's files inside a line that is printed with markup: shown as typed, never as a style."""
    return escape(str(value))


def json_text(data: Any, **kwargs: Any) -> str:
    """`--json` output: Chinese as it is, but no character a terminal obeys. json.dumps escapes C0 controls itself
    and leaves U+202E and its kind raw; sanitize's `\\u202e` is also JSON's escape, so a reader gets the same value."""
    return sanitize(json.dumps(data, ensure_ascii=False, indent=2, **kwargs))


class SafeConsole(Console):
    """A rich Console whose every printed string (messages, table cells) is sanitized before rendering.

    Rich markup is off unless a call asks for it (`print(..., markup=True)`): a name such as "药房[red]x[/red]" in a
    table cell or a message is printed as typed, not obeyed as a colour (issue #19). A call that styles its own
    words passes `markup=True` and escapes (rich.markup.escape) whatever data it interpolates.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        super().__init__(*args, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(sanitize(text), **kwargs)
