"""Collation: a list of samples (pytrees of the same structure) -> one batch pytree."""

from __future__ import annotations

import numpy as np

from functorch_lite import tree as tree_util
from functorch_lite.core import Array, asarray_default
from functorch_lite.data._datasets import wrap_batch

__all__ = ["default_collate"]

_PY_NUMBERS = (bool, int, float, complex)
_NUMERIC_KINDS = "biufc"  # what an fl.Array holds: no strings, objects or dates


def default_collate(samples):
    """Stack a list of samples (pytrees of one structure) into one batch pytree.

    Each leaf position is stacked with NumPy along a new leading axis: arrays must agree in
    shape; Python numbers become arrays (floats take the default float dtype, float32
    unless x64). The result holds ``fl.Array`` leaves on the default device. This is what
    :class:`DataLoader` does with samples of a dataset that is not an array dataset.

    Args:
        samples: a non-empty list of pytrees with the same structure.

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> batch = fl.data.default_collate([(np.zeros(2), 0), (np.ones(2), 1)])
        >>> batch[0].shape, batch[1]
        ((2, 2), Array([0, 1], dtype=int64))
    """
    samples = list(samples)
    treedef, leaves = collate_numpy(samples, range(len(samples)), "fl.data.default_collate")
    return wrap_batch(treedef, leaves)


def collate_numpy(samples, indices, fn_name="fl.data.DataLoader"):
    """``(treedef, stacked NumPy leaves)`` of ``samples``; ``indices`` (the samples' indices
    in the dataset) only name the samples in error messages."""
    if not samples:
        raise ValueError(f"{fn_name}: there are no samples to collate")
    indices = list(indices)
    first_leaves, treedef = tree_util.flatten(samples[0])
    columns = [[leaf] for leaf in first_leaves]
    for position, sample in enumerate(samples[1:], 1):
        leaves, other = tree_util.flatten(sample)
        if other != treedef:
            raise ValueError(
                f"{fn_name}: samples of one batch must share their pytree structure, but "
                f"sample {indices[0]} is {treedef} and sample {indices[position]} is "
                f"{other}; make __getitem__ return the same structure for every index, or "
                f"pass a collate_fn")
        for column, leaf in zip(columns, leaves):
            column.append(leaf)
    return treedef, [_stack(fn_name, treedef, j, column, indices)
                     for j, column in enumerate(columns)]


def _stack(fn_name, treedef, j, column, indices):
    if isinstance(column[0], _PY_NUMBERS):
        return asarray_default(column)
    try:
        buffers = [np.asarray(value) for value in column]
    except TypeError:
        buffers = [None]
    if buffers[0] is None or buffers[0].dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{fn_name}: leaf {_leaf_path(treedef, j)} of sample {indices[0]} is a "
            f"{type(column[0]).__name__}, which cannot be stacked into an array; return "
            f"arrays or numbers from __getitem__, or pass a collate_fn")
    shape = buffers[0].shape
    for position, buf in enumerate(buffers):
        if buf.shape != shape:
            raise ValueError(
                f"{fn_name}: leaf {_leaf_path(treedef, j)} has shape {shape} in sample "
                f"{indices[0]} but {buf.shape} in sample {indices[position]}; samples of "
                f"one batch are stacked, so each leaf needs one shape (pad or resize them, "
                f"or pass a collate_fn)")
    return np.stack(buffers)


def _leaf_path(treedef, j):
    """The key path of leaf ``j`` of ``treedef``, for messages."""
    placeholder = tree_util.unflatten(treedef, range(treedef.num_leaves))
    path = tree_util.flatten_with_path(placeholder)[0][j][0]
    return tree_util.keystr(path) or "<root>"


def to_arrays(batch):
    """A collate_fn's result with its NumPy arrays (and scalars) and Arrays put on the
    default device as Arrays; other leaves are left as they are."""
    from functorch_lite.devices import place_on_default_device

    def convert(leaf):
        if isinstance(leaf, (np.ndarray, np.generic)):
            leaf = Array(np.asarray(leaf))
        return place_on_default_device(leaf) if type(leaf) is Array else leaf
    return tree_util.map(convert, batch)


def load_batch(dataset, indices, collate_fn):
    """The batch of ``dataset``'s samples at ``indices`` (an int array), collated by
    ``collate_fn`` (None: stacked NumPy leaves). An error raised while reading a sample or
    collating gets a note naming the sample(s), and propagates unchanged otherwise."""
    samples = []
    for index in indices.tolist():
        try:
            samples.append(dataset[index])
        except Exception as error:
            add_note(error, f"fl.data.DataLoader: raised by dataset[{index}] "
                            f"({type(dataset).__name__}, sample {index})")
            raise
    try:
        if collate_fn is not None:
            return collate_fn(samples)
        treedef, leaves = collate_numpy(samples, indices.tolist())
        return tree_util.unflatten(treedef, leaves)
    except Exception as error:
        who = "the default collate" if collate_fn is None else f"collate_fn {collate_fn!r:.60}"
        add_note(error, f"fl.data.DataLoader: raised by {who} on samples "
                        f"{_short_list(indices)}")
        raise


def add_note(error, note):
    """``error.add_note(note)``, also on Python 3.10 (where tracebacks do not show it)."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:
        error.__notes__ = [*getattr(error, "__notes__", []), note]


def _short_list(indices, limit=8):
    values = indices.tolist()
    if len(values) <= limit:
        return str(values)
    return f"[{', '.join(map(str, values[:limit]))}, ... ({len(values)} samples)]"
