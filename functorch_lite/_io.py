"""``fl.save`` / ``fl.load``: pytrees of arrays on disk, without pickle.

A file holds the tree's leaves as named arrays plus a JSON description of the tree around
them, so nothing is unpickled on load and the file is readable from other tools:

* ``.safetensors`` (when the ``safetensors`` package is installed): tensors named by
  their key path (``layers.0.w``), the JSON in the header's metadata;
* anything else: a NumPy ``.npz`` archive, the JSON stored as a uint8 array under
  ``__tree__.json``.

The JSON records dicts (str or int keys), lists, tuples, None, namedtuples (by name and
fields), OrderedDicts and Python scalars (bool, int, float, str) inline. A node registered
with ``fl.tree.register_node`` is recorded by class name; loading one needs ``like=``.

Writes are atomic: the file is written to a temporary file in the same directory and moved
over ``path`` with ``os.replace``, so an error part-way leaves the old file (or none).
"""

from __future__ import annotations

import collections
import json
import os
import tempfile

import numpy as np

from functorch_lite import tree as tree_util
from functorch_lite.tree import _sorted_dict_keys

_TREE_KEY = "__tree__.json"
_META_KEY = "functorch_lite.tree"
_FORMAT_VERSION = 1
_SCALARS = (bool, int, float, str)


def save(path, tree):
    """Write a pytree of arrays to ``path`` atomically (``.npz``, or ``.safetensors``).

    Args:
        path: file path (str or ``os.PathLike``). A path ending in ``.safetensors`` is
            written in that format (needs the ``safetensors`` package); any other path
            is written as a NumPy ``.npz`` archive under exactly that name.
        tree: nested dicts / lists / tuples / namedtuples / None whose leaves are arrays
            (``fl.Array``, NumPy or CuPy) or Python scalars. Object arrays are refused.

    Raises:
        TypeError: a leaf is not an array or scalar (the error names its key path).

    Example:
        >>> import os, tempfile
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
        >>> fl.save(path, {"w": fnp.ones((2, 3)), "b": [fnp.zeros(3), None], "step": 7})
        >>> loaded = fl.load(path)
        >>> loaded["w"].shape, loaded["b"][1], loaded["step"]
        ((2, 3), None, 7)
    """
    path = os.fspath(path)
    arrays = {}
    description = {"version": _FORMAT_VERSION, "tree": _encode(tree, (), arrays)}
    text = json.dumps(description)
    if path.endswith(".safetensors"):
        safetensors_numpy = _import_safetensors("save")
        data = safetensors_numpy.save(arrays, metadata={_META_KEY: text})
        _write_atomically(path, lambda f: f.write(data))
    else:
        arrays[_TREE_KEY] = np.frombuffer(text.encode(), dtype=np.uint8)
        _write_atomically(path, lambda f: np.savez(f, **arrays))


def load(path, like=None):
    """Read a pytree written by :func:`save`; leaves come back as ``fl.Array``.

    Args:
        path: the file. A plain ``.npz`` / ``.safetensors`` file without a tree
            description loads as a dict of its arrays.
        like: optional pytree with the expected structure (e.g. freshly initialized
            parameters or optimizer state). The file must match it leaf for leaf in
            structure, shape and dtype; the result is built with ``like``'s own node
            types (namedtuples, registered classes).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file does not match ``like``; the message lists what differs.

    Example:
        >>> import os, tempfile
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> params = {"w": fnp.ones(3)}
        >>> opt_state = optim.adam(1e-3).init(params)
        >>> path = os.path.join(tempfile.mkdtemp(), "opt.npz")
        >>> fl.save(path, opt_state)
        >>> type(fl.load(path, like=opt_state)) is type(opt_state)
        True
        >>> fl.load(path, like={"w": fnp.ones(4)})
        Traceback (most recent call last):
            ...
        ValueError: fl.load: ... does not match `like`: ...
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"fl.load: no file at {path!r}.")
    arrays, description = _read(path)
    if description is None:
        tree = {name: _to_array(value) for name, value in arrays.items()}
    else:
        tree = _decode(description["tree"], arrays, like is not None)
    if like is None:
        return tree
    return _restore_like(path, tree, like)


# -- writing ------------------------------------------------------------------------------

def _write_atomically(path, write):
    """Run ``write(file)`` on a temporary file next to ``path``, then move it over ``path``.

    NB: same directory, so ``os.replace`` is a rename within one filesystem (atomic on
    POSIX and Windows); on any error the temporary file is removed and ``path`` untouched.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _encode(node, path, arrays):
    """JSON for ``node``; its array leaves go into ``arrays`` under unique names."""
    if node is None:
        return {"type": "none"}
    if isinstance(node, _SCALARS):
        return {"type": "scalar", "value": node}
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        return {"type": "namedtuple", "name": type(node).__name__,
                "fields": list(node._fields),
                "children": [_encode(v, path + (f,), arrays) for f, v in zip(node._fields, node)]}
    if type(node) in (list, tuple):
        return {"type": type(node).__name__,
                "children": [_encode(v, path + (i,), arrays) for i, v in enumerate(node)]}
    if isinstance(node, collections.OrderedDict) or type(node) is dict:
        keys = list(node) if isinstance(node, collections.OrderedDict) else _sorted_dict_keys(node)
        for k in keys:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"fl.save: dict key {k!r} at {_keystr(path)} is a "
                                f"{type(k).__name__}; only str and int keys can be saved.")
        return {"type": "ordereddict" if isinstance(node, collections.OrderedDict) else "dict",
                "keys": list(keys),
                "children": [_encode(node[k], path + (k,), arrays) for k in keys]}
    children, treedef = tree_util.flatten(node, is_leaf=lambda x: x is not node)
    if treedef.num_leaves != 1 or children[0] is not node:   # a registered node
        cls = type(node)
        return {"type": "node", "class": f"{cls.__module__}.{cls.__qualname__}",
                "children": [_encode(v, path + (i,), arrays) for i, v in enumerate(children)]}
    name = _leaf_name(path, arrays)
    arrays[name] = value = _to_numpy(node, path)
    return {"type": "array", "name": name, "shape": list(value.shape)}


def _to_numpy(leaf, path):
    if hasattr(leaf, "__cuda_array_interface__") and hasattr(leaf, "get"):   # cupy
        leaf = leaf.get()
    try:
        value = np.asarray(leaf)
    except Exception as e:
        raise TypeError(f"fl.save: the leaf at {_keystr(path)} ({type(leaf).__name__}) "
                        f"cannot be converted to an array: {e}") from e
    if value.dtype == object or value.dtype.kind not in "biufc":
        raise TypeError(
            f"fl.save: the leaf at {_keystr(path)} ({type(leaf).__name__}, "
            f"dtype {value.dtype}) is not an array of numbers; only numeric/bool arrays "
            "and Python scalars can be saved. Convert it to an array or drop it.")
    return value if value.flags.c_contiguous else value.copy(order="C")   # keeps 0-d


def _leaf_name(path, taken):
    name = ".".join(str(p) for p in path) or "value"
    if name in taken or name == _TREE_KEY:
        name = f"{name}#{len(taken)}"
    return name


def _keystr(path):
    return "the root" if not path else "".join(f"[{p!r}]" for p in path)


# -- reading ------------------------------------------------------------------------------

def _read(path):
    """(arrays by name, tree description or None) from a file written by ``save``."""
    if path.endswith(".safetensors"):
        _import_safetensors("load")
        from safetensors import safe_open

        with safe_open(path, framework="numpy") as f:
            arrays = {name: f.get_tensor(name) for name in f.keys()}
            text = (f.metadata() or {}).get(_META_KEY)
    else:
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except ValueError as e:
            raise ValueError(f"fl.load: {path!r} is not an .npz archive of plain arrays "
                             f"({e}).") from e
        raw = arrays.pop(_TREE_KEY, None)
        text = None if raw is None else raw.tobytes().decode()
    return arrays, (None if text is None else json.loads(text))


def _decode(node, arrays, have_like):
    kind = node["type"]
    if kind == "none":
        return None
    if kind == "scalar":
        return node["value"]
    if kind == "array":   # NB: safetensors' numpy reader turns 0-d tensors into 1-d ones
        return _to_array(arrays[node["name"]].reshape(node["shape"]))
    children = [_decode(c, arrays, have_like) for c in node["children"]]
    if kind == "list":
        return children
    if kind == "tuple":
        return tuple(children)
    if kind == "dict":
        return dict(zip(node["keys"], children))
    if kind == "ordereddict":
        return collections.OrderedDict(zip(node["keys"], children))
    if kind == "namedtuple":
        return collections.namedtuple(node["name"], node["fields"])(*children)
    if have_like:   # rebuilt from ``like``'s structure by the caller
        return _Opaque(node["class"], children)
    raise ValueError(f"fl.load: the file holds a {node['class']} (a registered pytree "
                     "node); pass like=<a tree of that structure> to rebuild it.")


class _Opaque:
    """A registered node read from a file, waiting to be rebuilt from ``like``."""

    def __init__(self, cls_name, children):
        self.cls_name, self.children = cls_name, children


tree_util.register_node(_Opaque, lambda o: (o.children, o.cls_name),
                        lambda cls_name, children: _Opaque(cls_name, list(children)))


def _to_array(value):
    from functorch_lite.numpy import asarray

    return asarray(value)


def _restore_like(path, tree, like):
    """``tree``'s leaves in ``like``'s structure, after checking they match leaf by leaf.

    Leaves are compared in flattening order (the order ``save`` wrote them), named by
    ``like``'s key paths; a registered node read from the file has no key names of its own,
    so paths are compared only outside such nodes.
    """
    got = tree_util.leaves_with_path(tree)
    want = tree_util.leaves_with_path(like)
    got_names = [tree_util.keystr(p) for p, _ in got]
    want_names = [tree_util.keystr(p) for p, _ in want]
    compare_names = not _has_opaque(tree)
    problems = []
    if len(got) != len(want) or (compare_names and got_names != want_names):
        missing = [n for n in want_names if n not in got_names]
        extra = [n for n in got_names if n not in want_names]
        if len(got) != len(want):
            problems.append(f"{len(got)} leaves in the file, {len(want)} in like")
        if compare_names and missing:
            problems.append(f"missing from the file: {', '.join(missing[:5])}")
        if compare_names and extra:
            problems.append(f"only in the file: {', '.join(extra[:5])}")
    else:
        for name, (_, g), (_, w) in zip(want_names, got, want):
            problems += _leaf_difference(name, g, w)
    if problems:
        raise ValueError(f"fl.load: {path!r} does not match `like`: " + "; ".join(problems))
    return tree_util.unflatten(tree_util.structure(like), [leaf for _, leaf in got])


def _has_opaque(tree):
    found = []
    tree_util.map(lambda x: found.append(x), tree, is_leaf=lambda x: isinstance(x, _Opaque))
    return any(isinstance(x, _Opaque) for x in found)


def _leaf_difference(name, got, want):
    if isinstance(want, _SCALARS) or isinstance(got, _SCALARS):
        if type(got) is not type(want):
            return [f"{name}: {type(got).__name__} in the file, {type(want).__name__} in like"]
        return []
    want_shape = tuple(np.shape(want))
    want_dtype = np.dtype(want.dtype) if hasattr(want, "dtype") else np.asarray(want).dtype
    got_shape, got_dtype = tuple(got.shape), np.dtype(got.dtype)
    if (got_shape, got_dtype) != (want_shape, want_dtype):
        return [f"{name}: {got_dtype}{list(got_shape)} in the file, "
                f"{want_dtype}{list(want_shape)} in like"]
    return []


def _import_safetensors(caller):
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(f"fl.{caller}: a .safetensors path needs the safetensors package "
                          "(pip install safetensors, or functorch_lite[train]); use a .npz "
                          "path otherwise.") from None
    return safetensors.numpy
