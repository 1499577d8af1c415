"""A dependency-free progress bar for long command-line runs, written to stderr.

On a terminal the bar redraws one line in place (carriage return); elsewhere (a pipe, a log
file, a test capturing stderr) it prints a plain line at each step, so logs stay readable
and nothing depends on terminal control codes.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from securecomp.errors import ParameterError

__all__ = ["Progress"]

_WIDTH = 28


class Progress:
    """``total`` steps with a label; `step` advances one and names what is being done.

    Invariant: ``0 <= done <= total``; `close` ends the line on a terminal.

    Parameters
    ----------
    total : number of steps.
    label : shown before the bar.
    stream : where to write (default ``sys.stderr``).
    enabled : False writes nothing (``--quiet``).
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
    ) -> None:
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise ParameterError(f"total must be an integer >= 1, got {total!r}")
        self.total = total
        self.done = 0
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.perf_counter()

    def render(self, what: str = "") -> str:
        """The bar as text, e.g. ``demo [#######.....]  7/12  12.3 s  training round 7``."""
        filled = round(_WIDTH * self.done / self.total)
        bar = "#" * filled + "." * (_WIDTH - filled)
        width = len(str(self.total))
        elapsed = time.perf_counter() - self._start
        text = f"{self.label} [{bar}] {self.done:>{width}}/{self.total} {elapsed:6.1f} s"
        return f"{text}  {what}" if what else text

    def step(self, what: str = "") -> None:
        """Advance one step (never past ``total``) and show ``what`` comes next or was done."""
        self.done = min(self.done + 1, self.total)
        self._write(what)

    def note(self, what: str) -> None:
        """Show ``what`` without advancing."""
        self._write(what)

    def _write(self, what: str) -> None:
        if not self.enabled:
            return
        if self._tty:
            self.stream.write("\r\x1b[2K" + self.render(what))
        else:
            self.stream.write(self.render(what) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Finish the line (terminal) so later output starts on a fresh one."""
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
