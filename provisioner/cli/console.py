"""The console seam: everything the CLI prints goes through here, redacted.

rich renders colour in a terminal and plain text in CI logs and pipes; the core never prints.
Without colour (``--no-color``, or ``NO_COLOR`` set to anything but an empty string, as
https://no-color.org asks; ``--color`` wins over it) no style is printed at all: no colour, no
bold, no dim.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from provisioner.core.secrets import REDACTOR


class Console:
    def __init__(self, *, stderr: bool = False, color: bool | None = None) -> None:
        from rich.console import Console as RichConsole

        stream = sys.stderr if stderr else sys.stdout
        self.plain = plain(color)
        self.rich = RichConsole(
            file=stream,
            highlight=False,
            soft_wrap=True,
            no_color=self.plain,
            force_terminal=True if color else None,
            color_system=None if self.plain else "auto",
        )

    def line(self, text: str = "", style: str = "") -> None:
        from rich.text import Text

        self.rich.print(Text(REDACTOR(text), style="" if self.plain else style))

    def lines(self, pairs: Iterable[tuple[str, str]]) -> None:
        for style, text in pairs:
            self.line(text, style)

    def raw(self, text: str) -> None:
        """Print text exactly (Markdown, JSON), redacted, without rich markup or wrapping."""
        self.rich.file.write(REDACTOR(text))
        self.rich.file.flush()

    def confirm(self, question: str) -> bool:
        """Ask yes/no (default no); end of input (Ctrl-D) is a no."""
        from rich.prompt import Confirm

        try:
            return bool(Confirm.ask(question, console=self.rich, default=False))
        except EOFError:
            self.line()
            return False


def plain(color: bool | None) -> bool:
    """Whether to print without any style: ``--no-color``, or ``NO_COLOR`` set and not empty (unless ``--color``)."""
    if color is not None:
        return not color
    return bool(os.environ.get("NO_COLOR"))


def out() -> Console:
    return Console()


def err(color: bool | None = None) -> Console:
    return Console(stderr=True, color=color)


def error(message: str, hint: str = "", color: bool | None = None) -> None:
    c = err(color)
    for line in message.splitlines() or [message]:
        c.line(f"error: {line}" if not line.startswith(("error", " ")) else line, "bold red")
    if hint:
        c.line(hint, "dim")
