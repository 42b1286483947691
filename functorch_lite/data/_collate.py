"""Collation: a list of samples (pytrees of the same structure) -> one batch pytree."""

from __future__ import annotations

import numpy as np

from functorch_lite import tree as tree_util
from functorch_lite.core import Array, asarray_default

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
    return to_arrays(collate_numpy(samples, range(len(samples)), "fl.data.default_collate"))


def collate_numpy(samples, indices, fn_name="fl.data.DataLoader"):
    """The batch pytree of ``samples`` with stacked NumPy leaves; ``indices`` (the samples'
    indices in the dataset) only name the samples in error messages."""
    if not samples:
        raise ValueError(f"{fn_name}: there are no samples to collate")
    return _collate(list(samples), list(indices), fn_name, "")


def _collate(column, indices, fn_name, path):
    """Collate ``column`` (the same position of every sample, at key path ``path``).

    Dicts, lists and tuples (the usual samples) are walked here, one level at a time,
    which costs a fraction of flattening every sample; other pytree nodes go through
    ``fl.tree`` (:func:`_collate_nodes`)."""
    first = column[0]
    kind = type(first)
    if kind is dict:
        keys = first.keys()
        for position, sample in enumerate(column):
            if type(sample) is not dict or sample.keys() != keys:
                raise _structure_error(fn_name, path, column, indices, position)
        return {key: _collate([sample[key] for sample in column], indices, fn_name,
                              f"{path}[{key!r}]") for key in keys}
    if kind is tuple or kind is list or (isinstance(first, tuple) and hasattr(kind, "_fields")):
        size = len(first)
        for position, sample in enumerate(column):
            if type(sample) is not kind or len(sample) != size:
                raise _structure_error(fn_name, path, column, indices, position)
        parts = [_collate([sample[i] for sample in column], indices, fn_name, f"{path}[{i}]")
                 for i in range(size)]
        return kind(*parts) if kind is not tuple and kind is not list else kind(parts)
    if tree_util.structure(first).node_data() is None:
        return _stack(fn_name, path or "<root>", column, indices)
    return _collate_nodes(column, indices, fn_name, path)


def _collate_nodes(column, indices, fn_name, path):
    """Collate values whose top node is another pytree node (None, a registered class)."""
    first_leaves, treedef = tree_util.flatten(column[0])
    leaf_columns = [[leaf] for leaf in first_leaves]
    for position, sample in enumerate(column[1:], 1):
        leaves, other = tree_util.flatten(sample)
        if other != treedef:
            raise _structure_error(fn_name, path, column, indices, position)
        for leaf_column, leaf in zip(leaf_columns, leaves):
            leaf_column.append(leaf)
    leaf_paths = [path + tree_util.keystr(key_path)
                  for key_path, _ in tree_util.flatten_with_path(column[0])[0]]
    return tree_util.unflatten(treedef, [
        _stack(fn_name, leaf_path or "<root>", leaf_column, indices)
        for leaf_path, leaf_column in zip(leaf_paths, leaf_columns)])


def _structure_error(fn_name, path, column, indices, position):
    where = f" at {path}" if path else ""
    return ValueError(
        f"{fn_name}: samples of one batch must share their pytree structure, but{where} "
        f"sample {indices[0]} is {tree_util.structure(column[0])} and sample "
        f"{indices[position]} is {tree_util.structure(column[position])}; make __getitem__ "
        f"return the same structure for every index, or pass a collate_fn")


def _stack(fn_name, path, column, indices):
    if isinstance(column[0], _PY_NUMBERS):
        return asarray_default(column)
    try:
        buffers = [np.asarray(value) for value in column]
    except TypeError:
        buffers = [None]
    if buffers[0] is None or buffers[0].dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{fn_name}: leaf {path} of sample {indices[0]} is a "
            f"{type(column[0]).__name__}, which cannot be stacked into an array; return "
            f"arrays or numbers from __getitem__, or pass a collate_fn")
    shape = buffers[0].shape
    for position, buf in enumerate(buffers):
        if buf.shape != shape:
            raise ValueError(
                f"{fn_name}: leaf {path} has shape {shape} in sample "
                f"{indices[0]} but {buf.shape} in sample {indices[position]}; samples of "
                f"one batch are stacked, so each leaf needs one shape (pad or resize them, "
                f"or pass a collate_fn)")
    return np.stack(buffers)


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
        return collate_numpy(samples, indices.tolist())
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
