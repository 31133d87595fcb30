"""Encoding worker processes kept warm for interactive screening.

Encoding a molecule is RDKit work that holds the GIL (about 1.2 ms each for fragment blocks),
so only processes put a second core to use. Starting them costs about a second of imports,
as much as encoding 1,000 molecules, so an interactive caller (the app) starts the pool once and
every later call reuses it: :func:`start` at page load, :func:`running` wherever a batch is
encoded. Workers come from a *fork server* (a clean process started before the caller's
threads), because forking a multi-threaded process such as a web server can deadlock.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

__all__ = ["MIN_MOLECULES", "discard", "pool_for", "running", "shutdown", "start",
           "start_in_background", "workers"]

logger = logging.getLogger(__name__)

#: below this many molecules one process is faster than shipping work to the pool
MIN_MOLECULES = 256

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_workers = 0
_starting = threading.Event()  # set while a background start is under way


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def start(workers: int | None = None) -> ProcessPoolExecutor | None:
    """The shared pool, started now if needed (waits until its workers are up).

    ``workers`` defaults to the usable cores; ``None`` is returned on a single core, where a
    pool would only add overhead.
    """
    global _pool, _workers
    n = workers or _usable_cores()
    if n < 2:
        return None
    with _lock:
        if _pool is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["mam_core.chem.tokenizers"])
            pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx)
            list(pool.map(abs, range(n)))  # start every worker before the first real batch
            _pool, _workers = pool, n
            logger.info("encoding pool: %d worker processes", n)
        return _pool


def start_in_background(workers: int | None = None) -> threading.Thread | None:
    """:func:`start` on a daemon thread unless a pool runs or is starting, so a page can call it
    on every run without waiting; batches encoded before the pool is up are encoded in the
    calling process. Returns the starting thread, or ``None`` when there was nothing to do."""
    with _lock:
        if _pool is not None or _starting.is_set():
            return None
        _starting.set()

    def _start() -> None:
        try:
            start(workers)
        except Exception as err:  # noqa: BLE001 - a pool is an optimisation, never an error
            logger.warning("could not start the encoding pool: %s", err)
        finally:
            _starting.clear()

    thread = threading.Thread(target=_start, name="encoding-pool-start", daemon=True)
    thread.start()
    return thread


def running() -> ProcessPoolExecutor | None:
    """The pool if :func:`start` has been called (and it has not broken), else ``None``."""
    return _pool


def pool_for(n_molecules: int) -> ProcessPoolExecutor | None:
    """The running pool when ``n_molecules`` is worth splitting, else ``None`` (encode here)."""
    return _pool if n_molecules >= MIN_MOLECULES else None


def workers() -> int:
    """Worker count of the running pool (0 when none runs)."""
    return _workers if _pool is not None else 0


def discard(pool: ProcessPoolExecutor) -> None:
    """Forget ``pool`` if it is the shared one (its workers died); the next
    :func:`start_in_background` makes a new one."""
    global _pool, _workers
    with _lock:
        if pool is not _pool:
            return
        _pool, _workers = None, 0
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop the workers (also at interpreter exit); a later :func:`start` makes new ones."""
    global _pool, _workers
    with _lock:
        pool, _pool, _workers = _pool, None, 0
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown)
