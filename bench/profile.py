"""Sampling profiles of the worker and API while the benchmark drives them.

py-spy attaches to a running process (no change to the code under test) and writes
collapsed stacks; `summarise_collapsed` turns them into the tables the README quotes:
where the samples were (self time) and which of our own functions they ran under
(inclusive time). The raw stacks are kept beside the summary for a flame graph.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Frames from these folders are OneThing's own; everything else is a library.
OWN_PREFIXES = ("workflows/", "activities/", "api/", "models/", "ops/", "worker.py", "settings.py", "cli.py")


@dataclass
class Profiler:
    """py-spy attached to each named process until stop()."""

    directory: Path
    rate: int = 100
    _running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @staticmethod
    def available() -> bool:
        return shutil.which("py-spy") is not None

    def start(self, processes: dict[str, int]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, pid in processes.items():
            command = ["py-spy", "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw"]
            command += ["--nonblocking", "-o", str(self.directory / f"{name}.collapsed.txt")]
            self._running[name] = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=(self.directory / f"{name}.py-spy.log").open("wb")
            )

    def stop(self) -> dict[str, dict[str, Any]]:
        """Stop sampling (py-spy writes its file on SIGINT) and summarise each process."""
        summaries = {}
        for name, process in self._running.items():
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
            collapsed = self.directory / f"{name}.collapsed.txt"
            if collapsed.exists():
                summaries[name] = summarise_collapsed(collapsed.read_text(encoding="utf-8"))
        self._running.clear()
        return summaries


def _frame_label(frame: str) -> str:
    """'function (path/to/file.py:12)' -> 'function (file.py)'; the line number only splits hairs."""
    function, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = _own_path(path) or path.rsplit("/", 1)[-1]
    return f"{function} ({path})"


def _own_path(path: str) -> str | None:
    for prefix in OWN_PREFIXES:
        index = path.find("/" + prefix)
        if index >= 0:
            return path[index + 1 :]
        if path.startswith(prefix):
            return path
    return None


def summarise_collapsed(text: str, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares from py-spy's collapsed stacks
    ('frame;frame;frame count' per line, outermost first)."""
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own_inclusive: Counter[str] = Counter()
    idle = 0
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_label(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        if leaf.startswith(("select (", "poll (", "epoll", "_worker (thread.py)", "wait (threading")):
            idle += count
        self_samples[leaf] += count
        for label in set(frames):
            inclusive[label] += count
            if _own_path(label.rsplit("(", 1)[-1].rstrip(")")):
                own_inclusive[label] += count

    def shares(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"frame": frame, "samples": count, "share": round(count / total, 3) if total else 0.0}
            for frame, count in counter.most_common(top)
        ]

    return {
        "samples": total,
        "idle_share": round(idle / total, 3) if total else 0.0,
        "self": shares(self_samples),
        "inclusive": shares(inclusive),
        "own_inclusive": shares(own_inclusive),
    }
