"""Long work of the annotator (projection, fit, export) on a background thread, one job at a time, with progress."""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from baggan.errors import USER_ERRORS, UserError

Report = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)
Work = Callable[[Report], Any]  # a job: does the work, reports progress, returns the result


class Busy(UserError):
    """Another job is running."""


@dataclass
class Job:
    """One piece of background work and how far it got."""

    id: int
    kind: str
    state: str = "running"  # running | done | failed
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: str = ""
    started: float = field(default_factory=time.time)
    seconds: float = 0.0

    def view(self) -> dict:
        """What the progress endpoint answers."""
        return {"id": self.id, "kind": self.kind, "state": self.state, "progress": round(self.progress, 4),
                "message": self.message, "result": self.result, "error": self.error,
                "seconds": round(self.seconds or time.time() - self.started, 3)}


class Jobs:
    """Runs one job at a time on a daemon thread; a second start while one runs is a UserError."""

    def __init__(self, debug: bool = False) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._running: Job | None = None
        self.debug = debug

    def start(self, kind: str, work: Work) -> Job:
        """Start work(report) in the background; its return value becomes the job's result."""
        with self._lock:
            if self._running is not None and self._running.state == "running":
                raise Busy(f"busy: a {self._running.kind} is running (job {self._running.id}); wait for it")
            job = Job(next(self._ids), kind)
            self._jobs[job.id] = job
            self._running = job
        threading.Thread(target=self._run, args=(job, work), name=f"baggan-label-{kind}", daemon=True).start()
        return job

    def _run(self, job: Job, work: Work) -> None:
        def report(fraction: float, message: str) -> None:
            job.progress, job.message = min(max(float(fraction), 0.0), 1.0), message

        try:
            job.result = work(report)
            job.progress, job.state = 1.0, "done"
        except USER_ERRORS as e:
            job.error, job.state = str(e), "failed"
        except Exception as e:  # noqa: BLE001 - a failed job reports one line; --debug prints the trace
            if self.debug:
                traceback.print_exc()
            job.error, job.state = f"{type(e).__name__}: {e}".splitlines()[0], "failed"
        finally:
            job.seconds = time.time() - job.started

    def get(self, job_id: int) -> Job:
        """The job of this id; UserError if there is none."""
        if job_id not in self._jobs:
            raise UserError(f"no job {job_id}")
        return self._jobs[job_id]

    def wait(self, job: Job, timeout: float = 600.0, poll: float = 0.05) -> Job:
        """Block until the job is done or failed (for scripts and tests)."""
        end = time.time() + timeout
        while job.state == "running" and time.time() < end:
            time.sleep(poll)
        return job
