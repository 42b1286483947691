"""Worker processes that make a DataLoader's batches, in order, with prefetch.

Batch ``b`` of an epoch is made by worker ``b % num_workers``, and each worker makes its
batches in increasing order, so the main process reads batch ``b`` as the next message on
worker ``b % num_workers``'s pipe: the order needs no sequence numbers or reordering.

Each worker owns one pipe, of which it holds the only write end (this process closes its
copy right after the start), so a worker that dies reads as end-of-file here, never as a
hang. Inside a worker the main thread makes batches into a queue of ``prefetch`` slots and
a sender thread writes them to the pipe. To stop the workers this process closes its ends:
each sender's next write fails and its worker returns (the main process being gone stops
them too). This module imports ``multiprocessing``, so the loader imports it only when
workers are asked for.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import signal
import threading
import time
import traceback
import weakref

from functorch_lite.data._collate import add_note, load_batch

__all__ = ["worker_batches", "default_start_method"]

_POLL_S = 0.1        # how often a waiting worker checks that someone still reads its batches
_GRACE_S = 1.0       # how long workers get to stop on their own before they are terminated


def default_start_method():
    """``'forkserver'`` where the OS has it (Python 3.14's default on Linux), else
    ``'spawn'``: workers that inherit no threads, locks or GPU context of this process."""
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def worker_batches(loader, order, bounds):
    """Yield the epoch's batches (made by ``loader.num_workers`` processes), in order.

    Workers start at the first ``next`` and stop when the generator finishes, is closed
    (a ``break`` out of the loop) or is garbage-collected.
    """
    if not bounds:
        return
    pool = _WorkerPool(loader, order, len(bounds))
    try:
        for number in range(len(bounds)):
            yield pool.receive(number)
    finally:
        pool.close()


class _WorkerPool:
    def __init__(self, loader, order, num_batches):
        method = loader.start_method or default_start_method()
        context = multiprocessing.get_context(method)
        count = min(loader.num_workers, num_batches)
        self._procs, self._readers = [], []
        # Holds the lists, not self: the workers stop when the pool is collected or at exit.
        self._finalizer = weakref.finalize(self, _shut_down, self._procs, self._readers)
        for worker in range(count):
            reader, writer = context.Pipe(duplex=False)
            # A forked worker inherits our read ends; it must close them, or closing ours
            # would not make its writes fail. (Other methods pass only what is in args.)
            inherited = [*self._readers, reader] if method == "fork" else []
            proc = context.Process(
                target=_work, name=f"fl.data worker {worker}", daemon=True,
                args=(worker, count, loader.dataset, loader.collate_fn, order,
                      loader.batch_size, num_batches, loader.prefetch, writer, inherited))
            try:
                proc.start()
            except (pickle.PicklingError, AttributeError, TypeError) as error:
                reader.close()
                self.close()
                raise TypeError(
                    f"fl.data.DataLoader: num_workers={loader.num_workers} sends the dataset "
                    f"and collate_fn to worker processes (start method {method!r}), and "
                    f"that failed: {type(error).__name__}: {error}. Define the dataset class "
                    f"and collate_fn at module level (not lambdas or local functions), or "
                    f"pass start_method='fork' (Linux, macOS)") from error
            finally:
                writer.close()
            self._procs.append(proc)
            self._readers.append(reader)

    def receive(self, number):
        """Batch ``number``: the next message from worker ``number % len(workers)``."""
        worker = number % len(self._procs)
        try:
            message = self._readers[worker].recv_bytes()
        except (EOFError, OSError):
            raise self._died(worker, number) from None
        kind, got, *payload = pickle.loads(message)
        if got != number:
            raise RuntimeError(f"fl.data.DataLoader: worker {worker} sent batch {got} when "
                               f"batch {number} was due (a bug in fl.data)")
        if kind == "batch":
            return payload[0]
        raise _remote_error(worker, number, *payload)

    def _died(self, worker, number):
        proc = self._procs[worker]
        proc.join(_GRACE_S)
        code = proc.exitcode
        if code is not None and code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return RuntimeError(
            f"fl.data.DataLoader: worker {worker} (pid {proc.pid}) {how} before sending "
            f"batch {number}. SIGKILL is often the out-of-memory killer (lower num_workers "
            f"or prefetch); SIGSEGV a crash in native code called by __getitem__ (try "
            f"num_workers=0 to see it in this process)")

    def close(self):
        self._finalizer()


def _shut_down(procs, readers):
    # Closing our ends makes each worker's next write fail, which stops it; a worker busy
    # in __getitem__ gets a grace period, then is terminated.
    for reader in readers:
        reader.close()
    deadline = time.monotonic() + _GRACE_S
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
            proc.join(_GRACE_S)
        if proc.is_alive():
            proc.kill()
            proc.join()


def _remote_error(worker, number, error_type, type_name, message, notes, formatted):
    """The worker's error rebuilt here: its type when that can be built from a message
    (else RuntimeError), its message, its notes (which name the sample) and traceback."""
    text = "\n".join([message, *notes,
                      f"(raised in fl.data.DataLoader worker {worker} while making batch "
                      f"{number}; the worker's traceback follows)", formatted.rstrip()])
    if error_type is not None:
        try:
            error = error_type(text)
            if isinstance(error, Exception):
                return error
        except Exception:
            pass
    return RuntimeError(f"{type_name}: {text}")


# --------------------------------------------------------------------------------------
# Inside a worker
# --------------------------------------------------------------------------------------
def _work(worker, count, dataset, collate_fn, order, batch_size, num_batches, prefetch,
          writer, inherited):
    # Ctrl-C reaches every process of the terminal; the main process handles it (its loop
    # stops, which stops us), so a worker ignores it instead of printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for reader in inherited:
        reader.close()
    ready = queue.Queue(maxsize=prefetch)
    sender = threading.Thread(target=_send_all, args=(ready, writer), daemon=True)
    sender.start()
    for number in range(worker, num_batches, count):
        if not sender.is_alive():
            return
        indices = order[number * batch_size:(number + 1) * batch_size]
        message, failed = _make_batch(dataset, collate_fn, indices, number)
        if not _put(ready, message, sender):
            return
        if failed:  # the error is the last message: the main process raises it
            break
    if _put(ready, None, sender):
        while sender.is_alive() and _parent_alive():
            sender.join(_POLL_S)


def _make_batch(dataset, collate_fn, indices, number):
    """``(pickled message, failed)`` for batch ``number``."""
    try:
        batch = load_batch(dataset, indices, collate_fn)
        try:
            return pickle.dumps(("batch", number, batch), pickle.HIGHEST_PROTOCOL), False
        except Exception as error:
            add_note(error, "fl.data.DataLoader: a batch must be picklable to leave its "
                            "worker; return arrays, numbers and containers from collate_fn")
            raise
    except Exception as error:
        details = (type(error).__name__, str(error), list(getattr(error, "__notes__", [])),
                   "".join(traceback.format_exception(error)))
        try:
            return pickle.dumps(("error", number, type(error), *details)), True
        except Exception:  # an exception class this process cannot pickle by reference
            return pickle.dumps(("error", number, None, *details)), True


def _put(ready, message, sender):
    """Queue ``message`` for the sender; False when nobody will read it any more."""
    while True:
        try:
            ready.put(message, timeout=_POLL_S)
            return True
        except queue.Full:
            if not (sender.is_alive() and _parent_alive()):
                return False


def _send_all(ready, writer):
    while True:
        message = ready.get()
        if message is None:
            return
        try:
            writer.send_bytes(message)
        except OSError:  # the main process closed its end: the epoch is over
            return


def _parent_alive():
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()
