"""The DataLoader: batches of a dataset in an order that is a pure function of (seed, epoch).

The order of epoch ``e`` is a permutation of ``range(len(dataset))`` drawn from NumPy's
Philox generator keyed by the 128-bit key ``(seed, e)`` (``shuffle=True``), or the
identity. Philox is a counter-based generator like the Threefry of ``fl.random``: its
stream is fixed by its key on every platform and in every process, so a worker, a
restarted run or another machine sees the same order. NumPy's Fisher-Yates permutation on
it costs ~30-45 ms per 1e6 samples, 4-5x less than ``fl.random.permutation`` (an argsort of
random bits). NumPy reserves the right to change ``Generator.permutation`` in a feature
release (NEP 19); a test pins the first orders so such a change cannot pass unnoticed.
"""

from __future__ import annotations

import operator

import numpy as np

from functorch_lite.core import Array, Tracer
from functorch_lite.data._collate import load_batch, to_arrays
from functorch_lite.data._datasets import array_source, dataset_length

__all__ = ["DataLoader"]

_UINT64 = 2**64


def _int_arg(where, name, value, minimum=1, limit=None):
    """``value`` as an int in ``[minimum, limit)``, or a TypeError/ValueError naming
    ``where`` and ``name``."""
    wanted = f"an int >= {minimum}" if limit is None else f"an int in [{minimum}, {limit})"
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{where}: {name} must be {wanted}, got {value!r:.40} "
                        f"({type(value).__name__})") from None
    if value < minimum or (limit is not None and value >= limit):
        raise ValueError(f"{where}: {name} must be {wanted}, got {value}")
    return value


def _seed_int(seed):
    """``seed`` (an int, or a key from ``fl.random.key``) as an int in [0, 2**64)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed) % _UINT64  # negative seeds wrap, as in fl.random.key
    if isinstance(seed, (Array, np.ndarray)) and not isinstance(seed, Tracer):
        words = np.asarray(seed)
        if words.dtype == np.uint32 and words.shape == (2,):
            return (int(words[0]) << 32) | int(words[1])
    raise TypeError(f"fl.data.DataLoader: seed must be an int or a key from "
                    f"fl.random.key(seed), got {seed!r:.40}")


class DataLoader:
    """Batches of a dataset; epoch ``e``'s batches are a pure function of (seed, e).

    ``loader.epoch(e)`` yields the batches of epoch ``e``: the same seed and epoch give
    the same batches, in any process; different epochs are shuffled differently.
    Iterating the loader itself (``for batch in loader``) runs epoch
    ``loader.next_epoch`` and advances it by one when the loop starts, so successive
    loops walk epochs 0, 1, 2, ... (a loop left early still uses up its epoch); set
    ``loader.next_epoch`` to resume a run. A batch is a pytree with the
    samples' structure whose leaves are ``fl.Array`` on the default device, with a
    leading batch axis.

    How batches are made:

    * Array datasets (an :class:`ArrayDataset`, or a :class:`Subset` of one) are cut with
      one fancy index per leaf per batch, in this process: shipping a batch from another
      process would cost more than cutting it, so ``num_workers`` does not apply.
    * Other datasets are read one sample at a time (``dataset[i]``) and collated with
      ``collate_fn(list_of_samples)`` (default: stack each leaf, see
      :func:`default_collate`). With ``num_workers > 0`` worker processes make the
      batches, each keeping up to ``prefetch`` batches ready, and they arrive in the same
      order as with ``num_workers=0``. Workers are started for each epoch and stopped when
      it ends, when the loop stops early, or when the iterator is garbage-collected; an
      error in a worker is raised here, naming the sample.
    * A ``collate_fn`` makes any dataset go through the per-sample path.

    Workers are started with ``start_method`` (default: ``'forkserver'`` where the OS has
    it, as Python 3.14 does on Linux, else ``'spawn'``): they do not inherit this
    process's threads, locks or GPU context, so the dataset and ``collate_fn`` must be
    picklable (defined at module level, not lambdas), and a script must guard its entry
    point with ``if __name__ == "__main__":`` (workers import the main module). Starting
    them costs a fixed ~0.3-1 s per epoch (each imports NumPy and this library).
    ``start_method='fork'`` (Linux, macOS) lifts those requirements and starts in
    milliseconds, at the usual risks of forking a process that runs threads.

    Args:
        dataset: a dataset (``__len__`` and ``__getitem__``).
        batch_size: samples per batch.
        shuffle: shuffle the samples each epoch (else dataset order).
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        seed: an int, or a key from ``fl.random.key(seed)`` (the same order as that int).
        num_workers: worker processes for datasets that are not array datasets.
        prefetch: batches each worker keeps ready ahead of the loop.
        collate_fn: turns a list of samples into a batch (default: stack the leaves).
        start_method: ``'forkserver'``, ``'spawn'`` or ``'fork'`` (see above).

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> ds = fl.data.ArrayDataset(np.arange(10.0), np.arange(10) % 2)
        >>> loader = fl.data.DataLoader(ds, batch_size=4, shuffle=True, seed=0)
        >>> len(loader)
        3
        >>> [x.shape for x, y in loader.epoch(0)]
        [(4,), (4,), (2,)]
        >>> first = [x.tolist() for x, y in loader.epoch(1)]
        >>> first == [x.tolist() for x, y in loader.epoch(1)]
        True
        >>> for x, y in loader:        # epoch 0, then the next loop runs epoch 1
        ...     pass
        >>> loader.next_epoch
        1
    """

    def __init__(self, dataset, batch_size, shuffle=False, drop_last=False, seed=0,
                 num_workers=0, prefetch=2, collate_fn=None, *, start_method=None):
        self.dataset = dataset
        self._length = dataset_length("fl.data.DataLoader", dataset)
        self.batch_size = _int_arg("fl.data.DataLoader", "batch_size", batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = _seed_int(seed)
        self.num_workers = _int_arg("fl.data.DataLoader", "num_workers", num_workers, minimum=0)
        self.prefetch = _int_arg("fl.data.DataLoader", "prefetch", prefetch)
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"fl.data.DataLoader: collate_fn must be callable (a list of "
                            f"samples -> a batch), got {type(collate_fn).__name__}")
        self.collate_fn = collate_fn
        if start_method not in (None, "forkserver", "spawn", "fork"):
            raise ValueError(f"fl.data.DataLoader: start_method must be 'forkserver', "
                             f"'spawn' or 'fork', got {start_method!r}")
        self.start_method = start_method
        # An array dataset is batched by fancy indexing unless a collate_fn asks for samples.
        self._source = array_source(dataset) if collate_fn is None else None
        self.next_epoch = 0

    def __len__(self):
        """The number of batches in an epoch."""
        if self.drop_last:
            return self._length // self.batch_size
        return -(-self._length // self.batch_size)

    def indices(self, epoch):
        """The order in which epoch ``epoch`` visits the samples (an int64 array of
        ``len(dataset)`` indices, before batching and ``drop_last``).

        Example:
            >>> import numpy as np
            >>> import functorch_lite as fl
            >>> ds = fl.data.ArrayDataset(np.arange(5))
            >>> fl.data.DataLoader(ds, batch_size=2).indices(0).tolist()
            [0, 1, 2, 3, 4]
        """
        epoch = _int_arg("fl.data.DataLoader.epoch", "the epoch", epoch, minimum=0,
                         limit=_UINT64)
        if not self.shuffle:
            return np.arange(self._length, dtype=np.int64)
        key = np.array([self.seed, epoch], dtype=np.uint64)
        return np.random.Generator(np.random.Philox(key=key)).permutation(self._length)

    def epoch(self, epoch):
        """An iterator over the batches of epoch ``epoch`` (a pure function of the seed and
        ``epoch``); it does not change ``next_epoch``.

        Example:
            >>> import numpy as np
            >>> import functorch_lite as fl
            >>> loader = fl.data.DataLoader(fl.data.ArrayDataset(np.arange(6)), 3,
            ...                             shuffle=True, seed=1)
            >>> [b.tolist() for b in loader.epoch(5)] == [b.tolist() for b in loader.epoch(5)]
            True
        """
        order = self.indices(epoch)
        bounds = [(start, start + self.batch_size)
                  for start in range(0, self._length, self.batch_size)][:len(self)]
        if self._source is not None:
            return self._array_batches(order, bounds)
        if self.num_workers == 0:
            return self._sample_batches(order, bounds)
        from functorch_lite.data._workers import worker_batches

        return (to_arrays(batch) for batch in worker_batches(self, order, bounds))

    def __iter__(self):
        """Run epoch ``next_epoch`` and advance it (so the next loop runs the next epoch)."""
        epoch = self.next_epoch
        self.next_epoch = epoch + 1
        return self.epoch(epoch)

    def _array_batches(self, order, bounds):
        base, rows = self._source
        if rows is None and not self.shuffle:
            # Dataset order over the whole array: a contiguous copy beats a fancy index.
            for start, stop in bounds:
                yield base.gather(slice(start, stop))
            return
        epoch_rows = order if rows is None else rows[order]
        for start, stop in bounds:
            yield base.gather(epoch_rows[start:stop])

    def _sample_batches(self, order, bounds):
        for start, stop in bounds:
            yield to_arrays(load_batch(self.dataset, order[start:stop], self.collate_fn))

    def __repr__(self):
        options = "".join(f", {name}={getattr(self, name)!r}" for name, default in
                          (("shuffle", False), ("drop_last", False), ("num_workers", 0))
                          if getattr(self, name) != default)
        seed = f", seed={self.seed}" if self.shuffle else ""
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}{options}{seed}; "
                f"{len(self)} batches)")
