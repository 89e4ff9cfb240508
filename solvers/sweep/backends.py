"""Where the points of a sweep are computed: ``"serial"``, ``"process"`` or ``"dask"``.

``"process"`` (default)
    Local worker processes (``concurrent.futures.ProcessPoolExecutor``),
    ``workers`` of them (default ``os.cpu_count()``), started with the
    ``"forkserver"`` method where the platform has it, else ``"spawn"``
    (``mp_context`` overrides). A forked child of a process that has started
    threads (numba's threading layer, a Dask client, OpenMP) can deadlock, so
    ``"fork"`` is not the default. With ``"forkserver"``, this module and the
    function's module are imported once in the fork server
    (``set_forkserver_preload``, which applies only when this process first
    starts its fork server), so after the first sweep of a process a pool
    starts without importing them again; ``"spawn"`` re-imports them in every
    worker of every sweep. Workers exit by themselves within a
    second when the sweep process is killed. ``function`` must be picklable: a
    module-level function, an instance of a module-level class, or a
    ``functools.partial`` of one. Workers import the function's module.
``"serial"``
    In this process, one point after the other (for debugging and for
    functions that cannot be pickled).
``"dask"``
    ``dask.distributed`` (optional extra: ``pip install "codingschemes[dask]"``).
    ``dask_address`` is a scheduler address (``"tcp://host:8786"``) or an
    existing ``distributed.Client``; with ``None`` a ``LocalCluster`` of
    ``workers`` single-threaded processes is started and closed afterwards.
    At most ``2 * workers`` points (default: 2 × the cluster's threads) are
    in flight at a time. The workers must be able to import the function's
    module (install ``codingschemes`` on every machine).

Whatever the backend, only the calling process writes the file: every backend hands each
finished point to ``on_result(out)``, which returns False to stop submitting new points.
"""
from __future__ import annotations

import concurrent.futures
import functools
import multiprocessing
import os
import pickle
import socket
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any, Callable

from solvers.sweep.fileformat import SweepError
from theory.jsonio import jsonable

__all__ = ["BACKENDS", "DASK_HINT", "evaluate", "run_backend", "default_context", "check_picklable"]

BACKENDS = ("process", "serial", "dask")
DASK_HINT = 'backend="dask" needs dask.distributed: pip install "codingschemes[dask]"'


def evaluate(function, index: int, point: dict) -> dict:
    """Call ``function(point)`` (in a worker); never raises for errors inside it."""
    start = time.perf_counter()
    result = error = tb = None
    try:
        out = function(dict(point))
        if not isinstance(out, Mapping):
            raise TypeError(f"the function returned a {type(out).__name__}, expected a dict of results")
        result = jsonable(dict(out), "result")
        status = "ok"
    except Exception as exc:  # recorded per point; KeyboardInterrupt/SystemExit propagate
        status = "error"
        error = f"{type(exc).__name__}: {exc}"
        tb = traceback.format_exc()
        result = None
    wall = time.perf_counter() - start
    return {"index": index, "status": status, "result": result, "error": error, "traceback": tb,
            "wall_time": float(wall), "worker": f"{socket.gethostname()}:{os.getpid()}"}


def _drive(submit: Callable, wait_first: Callable, todo: list[int], in_flight: int, on_result: Callable,
           describe_failure: Callable):
    """Keep ``in_flight`` points submitted until ``todo`` is done, a point fails or ``on_result`` says stop."""
    pending: dict[Any, int] = {}
    queue = iter(todo)
    stopped = False

    def fill():
        while len(pending) < in_flight and not stopped:
            i = next(queue, None)
            if i is None:
                return
            pending[submit(i)] = i

    fill()
    while pending:
        done, _ = wait_first(list(pending))
        finished, failure, failed = [], None, []
        for fut in done:
            i = pending.pop(fut)
            try:
                finished.append(fut.result())
            except Exception as exc:
                failure = failure or exc
                failed.append(i)
        if failure is None:
            fill()
        for out in sorted(finished, key=lambda r: r["index"]):
            if on_result(out) is False:  # results that arrived with a failure are still saved
                stopped = True
        if failure is not None:
            raise SweepError(describe_failure(failure, sorted(failed + list(pending.values())))) from failure


def failure_message(path, n_done):
    def describe(exc, indices):
        return (f"the sweep stopped: {type(exc).__name__}: {exc} (a worker died — killed, out of memory or "
                f"crashed — or could not run the function), while computing points {indices[:10]}"
                f"{' …' if len(indices) > 10 else ''}. The {n_done()} finished points are saved in {path}; "
                "run the same run_sweep call again to resume.")
    return describe


def default_context() -> str:
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def check_picklable(function, backend, context):
    try:
        pickle.dumps(function)
    except Exception as exc:
        raise TypeError(f"function cannot be sent to worker processes (backend={backend!r}): {exc}. Use a "
                        "module-level function or a functools.partial of one, or backend='serial'") from None
    base = function.func if isinstance(function, functools.partial) else function
    module = getattr(base, "__module__", None) or getattr(type(base), "__module__", None)
    main = sys.modules.get("__main__")
    if module == "__main__" and context != "fork" and not getattr(main, "__file__", None):
        raise TypeError(f"function {getattr(base, '__qualname__', base)!r} is defined in an interactive "
                        f"__main__ (python -c, a REPL or a notebook), which {context!r} worker processes cannot "
                        "import; move it into a module, or use backend='serial'")


def _watch_parent(pid: int, interval: float = 0.5):
    """Worker initializer: exit when the sweep process is gone.

    A worker of a killed sweep would otherwise wait forever on its task queue
    (a fork-server or spawn child holds both ends of the queue's pipe).
    """
    def watch():
        while True:
            time.sleep(interval)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(3)
            except OSError:  # exists, owned by someone else (pid reused): keep going
                pass

    threading.Thread(target=watch, name="sweep-parent-watchdog", daemon=True).start()


def _run_serial(function, points, todo, on_result):
    for i in todo:
        if on_result(evaluate(function, i, points[i])) is False:
            return


def _run_process(function, points, todo, workers, context, on_result, describe):
    ctx = multiprocessing.get_context(context)
    if context == "forkserver":
        # import this module (and the function's) once in the fork server, not in every worker
        base = function.func if isinstance(function, functools.partial) else function
        module = getattr(base, "__module__", None)
        preload = ["__main__", __name__] + ([module] if module and module not in ("__main__", __name__) else [])
        ctx.set_forkserver_preload(preload)
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                                  initializer=_watch_parent, initargs=(os.getpid(),))
    clean = False
    try:
        _drive(lambda i: pool.submit(evaluate, function, i, points[i]),
               lambda fs: concurrent.futures.wait(fs, return_when=concurrent.futures.FIRST_COMPLETED),
               todo, 2 * workers, on_result, describe)
        clean = True
    finally:
        pool.shutdown(wait=clean, cancel_futures=True)


def _dask_client(address, workers):
    """(client, client we opened or None, cluster we started or None)."""
    try:
        import distributed
    except ImportError:
        raise ImportError(DASK_HINT) from None
    if isinstance(address, distributed.Client):
        return address, None, None
    if address is None:
        import logging

        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR)
        client = distributed.Client(cluster)
        return client, client, cluster
    client = distributed.Client(address)
    return client, client, None


def _run_dask(function, points, todo, workers, address, on_result, describe):
    client, own_client, cluster = _dask_client(address, workers)
    import distributed

    try:
        slots = workers if address is not None and workers is not None else sum(client.nthreads().values())
        token = f"{os.getpid()}-{time.time_ns()}"
        _drive(lambda i: client.submit(evaluate, function, i, points[i], pure=False, key=f"sweep-{token}-{i}"),
               lambda fs: distributed.wait(fs, return_when="FIRST_COMPLETED"),
               todo, 2 * max(1, slots), on_result, describe)
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()


def run_backend(backend, function, points, todo, *, workers, context, dask_address, on_result, describe):
    """Compute ``points[i]`` for ``i`` in ``todo`` on ``backend``, handing each result to ``on_result``."""
    if not todo:
        return
    if backend == "serial":
        _run_serial(function, points, todo, on_result)
    elif backend == "process":
        _run_process(function, points, todo, workers, context, on_result, describe)
    else:
        _run_dask(function, points, todo, workers, dask_address, on_result, describe)
