"""The writing side of the engine, run beside annotation: a thread (the default), or a forked process that
shares no interpreter lock with the annotating loop (where the platform can fork; else a thread).

Both execute the same three messages through `ShardJobs`, in submission order:

    ("open", k, keep, info)   start shard k (a ShardWriter in a hidden folder)
    ("rows", k, rows)         add (image, label, latent, meta) rows to it
    ("finish", k, stats)      drop, index, rename it into place, rebuild DIR/index.json, then report k as done

The first error stops the writing (later messages are skipped) and is raised on the caller at its next
`submit` or at `close`; `abandon` skips what is queued. A stopped writer removes the hidden folders of the
shards it did not finish. A forked writer ignores SIGINT: Ctrl-C reaches the caller, which abandons it; it
dies with its caller (PR_SET_PDEATHSIG on Linux, else it notices within `_POLL` seconds), removing its
unfinished shards. `on_done(k)` runs after shard k is in place: on the writer thread, or in the calling
process (a process writer reports k back; the caller runs it at its next submit or at close).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
from pathlib import Path
from typing import Any, Callable

from baggan.synth.shards import ShardWriter, rebuild_index

WRITERS = ("process", "thread")
_POLL = 0.2  # seconds between checks while waiting on a queue


class ShardJobs:
    """Executes the writer messages: the open ShardWriters by shard index, and what every shard shares."""

    def __init__(self, outdir: Path, index_meta: dict, categories: list[dict], min_area: int, fill_holes: bool,
                 polygons: bool, on_done: Callable[[int], None]):
        self.outdir, self.index_meta, self.on_done = outdir, index_meta, on_done
        self.shared = dict(categories=categories, min_area=min_area, fill_holes=fill_holes, polygons=polygons)
        self.open: dict[int, ShardWriter] = {}

    def run(self, op: str, k: int, *args: Any) -> None:
        """Execute one message."""
        if op == "open":
            keep, info = args
            self.open[k] = ShardWriter(self.outdir, k, keep=keep, info=info, **self.shared)
        elif op == "rows":
            self.open[k].add_rows(args[0])
        elif op == "finish":
            self.open.pop(k).finish(args[0])
            rebuild_index(self.outdir, **self.index_meta)
            self.on_done(k)
        else:
            raise ValueError(f"unknown writer message {op!r}")

    def discard(self) -> None:
        """Remove the hidden folders of the shards opened and not finished."""
        while self.open:
            self.open.popitem()[1].discard()


class ThreadWriter:
    """Runs the messages on one thread behind a bounded queue."""

    def __init__(self, jobs: ShardJobs, maxsize: int):
        self._jobs = jobs
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._error: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="synth-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            msg = self._queue.get()
            if msg is None:
                return
            if self._error is None and not self._abandoned:
                try:
                    self._jobs.run(*msg)
                except BaseException as e:  # noqa: BLE001 - handed to the caller
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, *msg: Any) -> None:
        """Queue one message; blocks while the queue is full; raises an earlier message's error."""
        self._raise()
        while True:
            try:
                self._queue.put(msg, timeout=_POLL)
                return
            except queue.Full:
                self._raise()

    def abandon(self) -> None:
        """Skip the queued messages and stop the thread (after the message running now)."""
        self._abandoned = True
        self._queue.put(None)
        self._thread.join()
        self._jobs.discard()

    def close(self) -> None:
        """Wait for every queued message, stop the thread, raise the first error."""
        self._queue.put(None)
        self._thread.join()
        self._jobs.discard()
        self._raise()


def _portable(e: BaseException) -> BaseException:
    """e itself if it pickles (to cross to the caller), else a RuntimeError that names it."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - any pickling failure
        return RuntimeError(f"synthesis writer: {type(e).__name__}: {e}")


class _CallerGone(BaseException):
    """The calling process died: the writer stops, removing its unfinished shards."""


def _caller_gone(*_: Any) -> None:
    raise _CallerGone


def _die_with(caller: int) -> None:
    """Raise _CallerGone in this process (by SIGTERM) when process `caller` dies (Linux; elsewhere: polled)."""
    import ctypes
    import sys

    signal.signal(signal.SIGTERM, _caller_gone)
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != caller:  # died before the signal was armed
        raise _CallerGone


def _serve(jobs: ShardJobs, inbox, outbox, stop, caller: int) -> None:
    """The forked writer: execute messages until None; report done shards, the first error, then 'closed'."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    jobs.on_done = lambda k: outbox.put(("done", k))
    failed = False
    try:
        _die_with(caller)
        while True:
            try:
                msg = inbox.get(timeout=_POLL)
            except queue.Empty:
                if os.getppid() != caller:
                    raise _CallerGone from None
                continue
            except (EOFError, OSError):
                raise _CallerGone from None
            if msg is None:
                break
            if failed or stop.is_set():
                continue
            try:
                jobs.run(*msg)
            except Exception as e:  # noqa: BLE001 - handed to the caller
                failed = True
                outbox.put(("error", _portable(e)))
    except _CallerGone:
        jobs.discard()
        os._exit(0)  # nobody reads the queues any more: skip their flushing at exit
    jobs.discard()
    outbox.put(("closed", None))


class ProcessWriter:
    """Runs the messages in a forked process behind a bounded queue (the messages are pickled across)."""

    def __init__(self, jobs: ShardJobs, maxsize: int):
        ctx = mp.get_context("fork")
        self._on_done = jobs.on_done
        self._inbox, self._outbox, self._stop = ctx.Queue(maxsize=maxsize), ctx.Queue(), ctx.Event()
        self._error: BaseException | None = None
        self._closed = False
        self._proc = ctx.Process(target=_serve, args=(jobs, self._inbox, self._outbox, self._stop, os.getpid()),
                                 name="synth-writer", daemon=True)
        self._proc.start()

    def _poll(self, wait: bool) -> None:
        """Take the writer's reports (done shards → on_done, an error, 'closed'); with wait, until 'closed'."""
        while not self._closed:
            try:
                kind, value = self._outbox.get(timeout=_POLL) if wait else self._outbox.get_nowait()
            except queue.Empty:
                if not wait:
                    return
                if not self._proc.is_alive():
                    self._fail_dead()
                continue
            if kind == "done":
                self._on_done(value)
            elif kind == "error":
                self._error = self._error or value
            else:
                self._closed = True

    def _fail_dead(self) -> None:
        self._closed = True
        raise RuntimeError(f"synthesis writer process died (exit code {self._proc.exitcode}); "
                           "the finished shards are valid, resume to redo the rest")

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, *msg: Any) -> None:
        """Queue one message; blocks while the queue is full; raises an earlier message's error."""
        while True:
            self._poll(wait=False)
            self._raise()
            if not self._proc.is_alive():
                self._fail_dead()
            try:
                self._inbox.put(msg, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _stop_process(self) -> None:
        while self._proc.is_alive():
            try:
                self._inbox.put(None, timeout=_POLL)
                break
            except queue.Full:
                continue
        self._poll(wait=True)
        self._proc.join()

    def abandon(self) -> None:
        """Skip the queued messages and stop the process (after the message running now); never raises."""
        self._stop.set()
        self._on_done = lambda k: None  # the caller is unwinding: no more callbacks
        try:
            self._stop_process()
        except RuntimeError:
            pass

    def close(self) -> None:
        """Wait for every queued message, stop the process, raise the first error."""
        self._stop_process()
        self._raise()


def make_writer(kind: str, jobs: ShardJobs, maxsize: int) -> ThreadWriter | ProcessWriter:
    """A writer of `kind` ('process' falls back to a thread where the platform cannot fork)."""
    if kind not in WRITERS:
        raise ValueError(f"writer must be one of {WRITERS}, got {kind!r}")
    if kind == "process" and "fork" in mp.get_all_start_methods():
        return ProcessWriter(jobs, maxsize)
    return ThreadWriter(jobs, maxsize)
