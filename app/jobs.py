"""Background jobs for long work (training) so the page stays responsive.

A :class:`Job` runs a function in a daemon thread. The function gets a stop-file path (the
trainers stop cleanly, keeping a checkpoint, as soon as it exists) and an ``on_log`` callback
whose records the page reads to draw live curves. Nothing in the thread touches Streamlit.
"""

from __future__ import annotations

import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any, Callable


class Job:
    """One background run: ``fn(on_log=..., stop_file=...)`` → result."""

    def __init__(self, fn: Callable[..., Any], total_steps: int):
        self.total_steps = total_steps
        self.records: list[dict] = []
        self.result: Any = None
        self.error: str | None = None
        self._workdir = tempfile.TemporaryDirectory(prefix="mam_job_")
        self.stop_file = Path(self._workdir.name) / "STOP"
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn) -> None:
        try:
            self.result = fn(on_log=self.records.append, stop_file=self.stop_file)
        except Exception as err:  # shown on the page; the traceback goes to the server log
            traceback.print_exc()
            self.error = f"{type(err).__name__}: {err}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def step(self) -> int:
        return int(self.records[-1]["step"]) if self.records else 0

    @property
    def progress(self) -> float:
        return min(1.0, self.step / max(self.total_steps, 1))

    def stop(self) -> None:
        """Ask the trainer to stop after the current step (it keeps what it learned)."""
        self.stop_file.touch()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


def refresh_interval(job: Job | None, seconds: float = 1.0) -> float | None:
    """How often a live view of ``job`` should redraw: every ``seconds`` while it runs, never
    (``None``) when there is no job or it has ended, so an idle page does not rerun."""
    return seconds if job is not None and job.running else None
