"""Reading what a command wrote on stderr: its error lines, without the notes every command writes about the
server it uses (lines that start with ``taskplane: ``)."""

from __future__ import annotations

NOTE = "taskplane: "


def error_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not taskplane's notes (an error is one of these)."""
    return [line for line in stderr.strip().splitlines() if line and not line.startswith(NOTE)]


def notes(stderr: str) -> list[str]:
    """taskplane's notes in ``stderr`` (which server a command used, what it started or stopped)."""
    return [line for line in stderr.splitlines() if line.startswith(NOTE)]
