"""Worker processes for the benchmarks: fresh (spawned) processes that end when the process that owns them does."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time


def follow_parent(parent: int, poll_s: float = 1.0) -> None:
    """Pool worker initializer: end this worker once process ``parent`` (the pool's owner) is gone.

    A parent killed by a signal (``kill``, ``pkill``) never shuts its pool down, and a worker in the middle of a
    range of pairs would edit on for hours; a watcher thread sees the worker re-parented and exits it.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def worker_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """``workers`` fresh (spawned: no torch thread pools or model state copied in) processes that end with this
    one (:func:`follow_parent`)."""
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=follow_parent, initargs=(os.getpid(),))
