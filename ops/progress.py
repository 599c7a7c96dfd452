"""The progress bar of the long commands (demo, rebuild)."""

from __future__ import annotations

import sys


class ProgressBar:
    """A one-line progress bar on stderr for long commands; without a terminal, a line per tenth."""

    def __init__(self, label: str, width: int = 30) -> None:
        self.label = label
        self.width = width
        self._terminal = sys.stderr.isatty()
        self._last_step = ""

    def __call__(self, done: int, total: int | None) -> None:
        if total:
            filled = min(self.width, self.width * done // total)
            line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}"
            step = f"{10 * done // total}"
        else:
            line, step = f"{self.label} {done}", f"{done // 100}"
        if self._terminal:
            sys.stderr.write(f"\r{line}")
            sys.stderr.flush()
        elif step != self._last_step:
            print(line, file=sys.stderr, flush=True)
            self._last_step = step

    def close(self) -> None:
        if self._terminal:
            sys.stderr.write("\n")
