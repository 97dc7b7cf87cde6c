"""The console seam: everything the CLI prints goes through here, redacted.

rich renders colour in a terminal and plain text in CI logs and pipes; the core never prints.
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
        no_color = color is False or "NO_COLOR" in os.environ
        self.rich = RichConsole(
            file=stream, highlight=False, soft_wrap=True, no_color=no_color, force_terminal=True if color else None
        )

    def line(self, text: str = "", style: str = "") -> None:
        from rich.text import Text

        self.rich.print(Text(REDACTOR(text), style=style or ""))

    def lines(self, pairs: Iterable[tuple[str, str]]) -> None:
        for style, text in pairs:
            self.line(text, style)

    def raw(self, text: str) -> None:
        """Print text exactly (Markdown, JSON), redacted, without rich markup or wrapping."""
        self.rich.file.write(REDACTOR(text))
        self.rich.file.flush()

    def confirm(self, question: str) -> bool:
        from rich.prompt import Confirm

        return bool(Confirm.ask(question, console=self.rich, default=False))


def out() -> Console:
    return Console()


def err() -> Console:
    return Console(stderr=True)


def error(message: str, hint: str = "") -> None:
    c = err()
    for line in message.splitlines() or [message]:
        c.line(f"error: {line}" if not line.startswith(("error", " ")) else line, "bold red")
    if hint:
        c.line(hint, "dim")
