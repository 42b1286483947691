"""Datasets: the ``Dataset`` protocol, in-memory ``ArrayDataset``, ``Subset``, ``random_split``.

A dataset is anything with ``__len__`` and ``__getitem__(int)``. Two kinds matter to the
loader: *array datasets* (an :class:`ArrayDataset`, or a :class:`Subset` of one, to any
depth), which it batches with one fancy index per leaf, and every other dataset, which it
reads one sample at a time and collates.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from functorch_lite import tree as tree_util
from functorch_lite.core import Array, Tracer, to_buffer

__all__ = ["Dataset", "ArrayDataset", "Subset", "random_split"]


@runtime_checkable
class Dataset(Protocol):
    """What the loader reads: ``len(ds)`` samples, ``ds[i]`` for ``0 <= i < len(ds)``.

    A sample is any pytree (an array, a tuple ``(x, y)``, a dict...). Subclassing is not
    needed: any object with these two methods is a dataset.

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> class Squares:
        ...     def __len__(self):
        ...         return 4
        ...     def __getitem__(self, i):
        ...         return {"x": float(i), "y": float(i * i)}
        >>> isinstance(Squares(), fl.data.Dataset)
        True
        >>> next(iter(fl.data.DataLoader(Squares(), batch_size=4)))["y"]
        Array([0., 1., 4., 9.], dtype=float32)
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


def dataset_length(fn_name: str, dataset) -> int:
    """``len(dataset)``, or a TypeError saying what a dataset needs."""
    if isinstance(dataset, dict):
        raise TypeError(
            f"{fn_name}: a dict is not a dataset (its keys are not the sample indices "
            f"0..n-1); for a dict of arrays sharing their first axis use "
            f"fl.data.ArrayDataset({{...}})")
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(
            f"{fn_name}: the dataset must have __len__ and __getitem__ (the fl.data.Dataset "
            f"protocol), got {type(dataset).__name__}; wrap in-memory arrays with "
            f"fl.data.ArrayDataset(x, y) or write a class with both methods")
    n = len(dataset)
    if not isinstance(n, int) or n < 0:
        raise TypeError(f"{fn_name}: len(dataset) must be a non-negative int, got {n!r}")
    return n


def _host_buffer(fn_name, path, leaf):
    """The leaf as a NumPy array in host memory, not copied when it already is one."""
    if isinstance(leaf, Tracer):
        raise TypeError(f"{fn_name}: leaf {path} is a traced value; build datasets outside "
                        "transforms, from concrete arrays")
    buf = np.asarray(leaf) if type(leaf) is Array else to_buffer(leaf)
    if type(buf).__module__.startswith("cupy"):
        buf = buf.get()  # batches are cut on the host, then moved to the default device
    if not isinstance(buf, np.ndarray) or buf.ndim == 0:
        raise ValueError(f"{fn_name}: leaf {path} is a scalar ({buf!r:.40}); every leaf "
                         "needs a leading axis of samples")
    return buf


class ArrayDataset:
    """In-memory arrays whose leading axis indexes the samples (PyTorch's TensorDataset).

    ``ArrayDataset(x, y)`` gives samples ``(x[i], y[i])``; ``ArrayDataset(tree)`` takes one
    pytree (a dict, a tuple, a single array) and gives samples of that structure. Every
    leaf must have the same leading length. The arrays are kept as they are (NumPy arrays
    are not copied, arrays on a GPU are copied to the host once); the loader cuts each batch
    with one fancy index per leaf and moves it to the default device.

    Args:
        *arrays: one pytree of arrays, or several arrays (a tuple of them).

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> ds = fl.data.ArrayDataset({"image": np.zeros((5, 2, 2)), "label": np.arange(5)})
        >>> len(ds), ds[3]["label"]
        (5, Array(3, dtype=int64))
        >>> fl.data.ArrayDataset(np.zeros((5, 2)), np.arange(5))[1:3][1]
        Array([1, 2], dtype=int64)
    """

    def __init__(self, *arrays):
        if not arrays:
            raise TypeError("fl.data.ArrayDataset: give it arrays, e.g. ArrayDataset(x, y) "
                            "or ArrayDataset({'x': x, 'y': y})")
        tree = arrays[0] if len(arrays) == 1 else arrays
        with_path, self._treedef = tree_util.flatten_with_path(tree)
        if not with_path:
            raise ValueError("fl.data.ArrayDataset: the pytree has no array leaves")
        paths = [tree_util.keystr(path) or "<root>" for path, _ in with_path]
        self._buffers = [_host_buffer("fl.data.ArrayDataset", path, leaf)
                         for path, (_, leaf) in zip(paths, with_path)]
        self._length = len(self._buffers[0])
        for path, buf in zip(paths, self._buffers):
            if len(buf) != self._length:
                raise ValueError(
                    f"fl.data.ArrayDataset: every leaf needs the same leading length, but "
                    f"leaf {paths[0]} has {self._length} samples (shape "
                    f"{self._buffers[0].shape}) and leaf {path} has {len(buf)} (shape "
                    f"{buf.shape}); slice them to a common length")
        self._paths = paths

    def __len__(self):
        return self._length

    def __getitem__(self, index):
        """The sample(s) at ``index`` (an int, a slice or an integer array), as a pytree of
        Arrays with the dataset's structure."""
        return wrap_batch(self._treedef, [np.asarray(buf[index]) for buf in self._buffers])

    def gather(self, rows):
        """The batch of samples ``rows``: an integer array (one fancy index per leaf) or a
        slice (one contiguous copy per leaf). Unlike ``ds[rows]`` the batch is always a
        copy: it never aliases the dataset's arrays.

        Example:
            >>> import numpy as np
            >>> import functorch_lite as fl
            >>> fl.data.ArrayDataset(np.arange(5) * 2).gather(np.array([4, 0]))
            Array([8, 0], dtype=int64)
        """
        if isinstance(rows, slice):
            return wrap_batch(self._treedef, [buf[rows].copy() for buf in self._buffers])
        return wrap_batch(self._treedef, [buf[rows] for buf in self._buffers])

    def __repr__(self):
        leaves = ", ".join(f"{path}: {buf.dtype}{list(buf.shape)}"
                           for path, buf in zip(self._paths, self._buffers))
        return f"ArrayDataset({leaves})"


class Subset:
    """The samples of ``dataset`` at ``indices``, in that order (as ``torch.utils.data.Subset``).

    A Subset of an :class:`ArrayDataset` is still batched with one fancy index per leaf.

    Args:
        dataset: any dataset.
        indices: a 1-d sequence of ints in ``[0, len(dataset))``.

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> ds = fl.data.ArrayDataset(np.arange(10) * 10)
        >>> evens = fl.data.Subset(ds, [0, 2, 4])
        >>> len(evens), evens[2]
        (3, Array(40, dtype=int64))
    """

    def __init__(self, dataset, indices):
        n = dataset_length("fl.data.Subset", dataset)
        rows = np.asarray(indices)
        if rows.size == 0:
            rows = rows.astype(np.int64)
        if rows.ndim != 1 or rows.dtype.kind not in "iu":
            raise TypeError(f"fl.data.Subset: indices must be a 1-d sequence of ints, got "
                            f"{rows.dtype}{list(rows.shape)}")
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            bad = rows[(rows < 0) | (rows >= n)][0]
            raise IndexError(f"fl.data.Subset: index {bad} is out of range for a dataset of "
                             f"{n} samples; indices must lie in [0, {n})")
        self.dataset = dataset
        self.indices = rows.astype(np.int64)  # a private copy: later edits do not show
        self.indices.flags.writeable = False

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        rows = self.indices[index]
        return self.dataset[int(rows) if rows.ndim == 0 else rows]

    def __repr__(self):
        return f"Subset({self.dataset!r}, {len(self)} of {len(self.dataset)} samples)"


def array_source(dataset):
    """``(base, rows)`` for an array dataset: the ArrayDataset underneath and which of its
    rows it holds, in order (None: all of them); None for any other dataset."""
    if isinstance(dataset, ArrayDataset):
        return dataset, None
    if isinstance(dataset, Subset):
        found = array_source(dataset.dataset)
        if found is not None:
            base, rows = found
            return base, dataset.indices if rows is None else rows[dataset.indices]
    return None


def wrap_batch(treedef, buffers):
    """Leaf buffers as Arrays on the default device, in the pytree ``treedef``."""
    from functorch_lite.devices import place_on_default_device

    return tree_util.unflatten(treedef, [place_on_default_device(Array(buf))
                                         for buf in buffers])


def random_split(dataset, sizes, key):
    """Split ``dataset`` into non-overlapping random :class:`Subset` s of the given sizes.

    ``sizes`` are either ints summing to ``len(dataset)`` or fractions summing to 1 (then
    each part gets ``floor(fraction * n)`` samples and the remainder goes one sample at a
    time to the first parts, as in PyTorch). The split is a pure function of ``key``.

    Args:
        dataset: any dataset.
        sizes: a sequence of ints or of fractions.
        key: a PRNG key from ``fl.random.key(seed)``.

    Returns:
        A list of Subsets, one per size.

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> ds = fl.data.ArrayDataset(np.arange(10))
        >>> train, val = fl.data.random_split(ds, [0.8, 0.2], fl.random.key(0))
        >>> len(train), len(val)
        (8, 2)
        >>> sorted(train.indices.tolist() + val.indices.tolist()) == list(range(10))
        True
    """
    from functorch_lite import random as fl_random

    n = dataset_length("fl.data.random_split", dataset)
    lengths = _split_lengths(n, sizes)
    key_array = np.asarray(key) if isinstance(key, (Array, np.ndarray)) else None
    if key_array is None or key_array.dtype != np.uint32 or key_array.shape != (2,):
        raise TypeError(f"fl.data.random_split: key must be a PRNG key (uint32[2]), got "
                        f"{type(key).__name__}; make one with fl.random.key(seed)")
    order = np.asarray(fl_random.permutation(key, n))
    bounds = np.cumsum([0] + lengths)
    return [Subset(dataset, order[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])]


def _split_lengths(n, sizes):
    sizes = list(sizes)
    if not sizes:
        raise ValueError("fl.data.random_split: sizes is empty; give the size of each part")
    try:
        lengths = [operator.index(s) for s in sizes]
    except TypeError:
        lengths = None
    if lengths is not None:
        if any(s < 0 for s in lengths) or sum(lengths) != n:
            raise ValueError(
                f"fl.data.random_split: sizes {lengths} sum to {sum(lengths)} but the dataset "
                f"has {n} samples; give non-negative ints summing to {n}, or fractions "
                f"summing to 1")
        return lengths
    fractions = [float(s) for s in sizes]
    if any(not 0 <= f <= 1 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(
            f"fl.data.random_split: fractions {sizes} sum to {sum(fractions):g}; fractions "
            f"must lie in [0, 1] and sum to 1 (or give ints summing to {n})")
    lengths = [math.floor(n * f) for f in fractions]
    for i in range(n - sum(lengths)):
        lengths[i % len(lengths)] += 1
    return lengths
