"""Specs for the indexing family: getitem, .at updates, take, sort, diagonals...

A spec's arguments are arrays only (the vmap property batches each of them), so every
static part of an index is a *recipe*: a function of the per-example shape, fixed per
spec. Integer index arrays are arguments: drawn in range, they stay in range when the
vmap property shuffles them. Randomly drawn index tuples and boolean masks are covered by
``tests/numpy/test_indexing.py``.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import functorch_lite.numpy as fnp
from specs import array, shapes, spec

ALL_DTYPES = ("float32", "float64", "int64")


# --- strategies ---------------------------------------------------------------------------
def _index_array(n, shape):
    return hnp.arrays(np.int64, shape, elements=st.integers(-n, n - 1))


def _distinct(dtype, size):
    """``size`` values at least 0.5 apart (no ties, even within a finite-difference step,
    so min/max/sort derivatives are smooth)."""
    return st.permutations(range(size)).map(
        lambda p: ((np.asarray(p, np.float64) - size / 2) * 0.5).astype(dtype))


def x_and_arrays(axes, min_dims, unique_values=False):
    """``x`` and one integer array per entry of ``axes`` (the axis of x it indexes)."""
    def args(dtype):
        @st.composite
        def draw(draw):
            s = draw(shapes(min_dims=min_dims, max_dims=min_dims + 1))
            x = draw(array(dtype, s))
            bshapes = draw(hnp.mutually_broadcastable_shapes(
                num_shapes=len(axes), max_dims=2, max_side=3)).input_shapes
            return (x,) + tuple(draw(_index_array(s[ax], b))
                                for ax, b in zip(axes, bshapes, strict=True))
        return draw()
    return args


def update_args(axes, min_dims, index, distinct=False, unique_indices=False):
    """``(x, *arrays, v)`` with ``v`` shaped like ``x[index(shape, arrays)]``."""
    def args(dtype):
        @st.composite
        def draw(draw):
            s = draw(shapes(min_dims=min_dims, max_dims=min_dims + 1))
            index_shape = draw(shapes(1, 2, max_side=3))  # one shape for all the arrays
            arrays = []
            for ax in axes:
                n = s[ax]
                if unique_indices:
                    perm = draw(st.permutations(range(-n, 0)))
                    arrays.append(np.asarray(perm[:draw(st.integers(1, n))], np.int64))
                else:
                    arrays.append(draw(_index_array(n, index_shape)))
            target = np.empty(s)[index(s, *arrays)].shape
            if distinct and dtype != "int64":
                size = int(np.prod(s)) + int(np.prod(target))
                flat = draw(_distinct(dtype, size))
                x, v = flat[:int(np.prod(s))].reshape(s), flat[int(np.prod(s)):].reshape(target)
            else:
                x, v = draw(array(dtype, s)), draw(array(dtype, target))
            return (x, *arrays, v)
        return draw()
    return args


def unary(min_dims=0, max_dims=3, distinct=False, min_side=1):
    def args(dtype):
        if distinct and dtype != "int64":
            return shapes(min_dims, max_dims, min_side=min_side).flatmap(
                lambda s: _distinct(dtype, int(np.prod(s))).map(lambda f: (f.reshape(s),)))
        return shapes(min_dims, max_dims, min_side=min_side).flatmap(
            lambda s: st.tuples(array(dtype, s)))
    return args


# --- basic indexing: slice ------------------------------------------------------------------
BASIC = {  # name: (recipe(shape) -> index, min_dims)
    "ints_and_steps": (lambda s: (-1, slice(s[1], 0, -2), slice(1, None)), 3),
    "negative_step": (lambda s: (slice(None, None, -1), s[1] // 2), 2),
    "newaxis_ellipsis": (lambda s: (None, 0, Ellipsis, slice(1, None, 2), None), 2),
}
for _name, (_recipe, _nd) in BASIC.items():
    spec(f"getitem[{_name}]",
         lambda x, r=_recipe: fnp.getitem(x, r(fnp.shape(x))),
         lambda x, r=_recipe: x[r(x.shape)],
         unary(min_dims=_nd, max_dims=_nd + 1), covers=("slice",), dtypes=ALL_DTYPES)

# --- advanced indexing: gather ------------------------------------------------------------
ADVANCED = {  # name: (index(*arrays), axes the arrays index, min_dims)
    "array": (lambda i: (i,), (0,), 1),
    "adjacent_arrays": (lambda i, j: (Ellipsis, i, j), (-2, -1), 2),
    "separated_arrays": (lambda i, j: (i, slice(1, None), j), (0, 2), 3),
    "array_int_newaxis": (lambda i: (None, i, slice(None, None, -1), -1), (0,), 3),
}
for _name, (_index, _axes, _nd) in ADVANCED.items():
    spec(f"getitem[{_name}]",
         lambda x, *a, r=_index: fnp.getitem(x, r(*a)),
         lambda x, *a, r=_index: x[r(*a)],
         x_and_arrays(_axes, _nd), covers=("gather",), dtypes=ALL_DTYPES)


# --- .at updates ---------------------------------------------------------------------------
def _np_update(method, x, index, v):
    out = x.copy()
    if method == "set":
        out[index] = v
    else:
        getattr(np, {"add": "add", "multiply": "multiply", "min": "minimum",
                     "max": "maximum"}[method]).at(out, index, v)
    return out


def _at_spec(name, method, index, axes, min_dims, covers, unique_indices=False, **kw):
    spec(name,
         lambda x, *a, m=method, r=index: getattr(
             fnp.asarray(x).at[r(fnp.shape(x), *a[:-1])], m)(a[-1]),
         lambda x, *a, m=method, r=index: _np_update(m, x, r(x.shape, *a[:-1]), a[-1]),
         update_args(axes, min_dims, index, distinct=method in ("min", "max"),
                     unique_indices=unique_indices),
         covers=covers, dtypes=ALL_DTYPES, **kw)


def _twice(i):
    return np.concatenate([i, i]) if isinstance(i, np.ndarray) else fnp.concatenate([i, i])


for _method in ("set", "add", "max"):  # basic indices: update_slice composites
    _at_spec(f"at_basic.{_method}", _method, lambda s: (slice(None, None, -2), Ellipsis, -1),
             (), 2, ("update_slice",))
_at_spec("at.set", "set", lambda s, i, j: (i, slice(None), j), (0, 2), 3, ("scatter",))
_at_spec("at.add", "add", lambda s, i: (None, Ellipsis, i), (-1,), 2, ("scatter_add",))
_at_spec("at.min", "min", lambda s, i: (i,), (0,), 1, ("scatter_min",))
_at_spec("at.max", "max", lambda s, i: (Ellipsis, i), (-1,), 2, ("scatter_max",))
_at_spec("at.multiply[unique]", "multiply", lambda s, i: (i,), (0,), 1,
         ("gather", "scatter"), unique_indices=True)
# Repeated indices: the derivative in the updates is not implemented, only in x.
_at_spec("at.multiply[repeated]", "multiply", lambda s, i: (_twice(i),), (0,), 1,
         ("scatter_mul",), diff_argnums=(0,))

# --- take, take_along_axis -----------------------------------------------------------------
spec("take", lambda x, i: fnp.take(x, i, axis=-1), lambda x, i: np.take(x, i, axis=-1),
     x_and_arrays((-1,), 1), covers=("gather",), dtypes=ALL_DTYPES)
spec("take[flat, clip]", lambda x, i: fnp.take(x, i * 3, mode="clip"),
     lambda x, i: np.take(x, i * 3, mode="clip"), x_and_arrays((0,), 1), covers=("gather",),
     dtypes=ALL_DTYPES)


def _along_args(dtype):
    @st.composite
    def draw(draw):
        s = draw(shapes(min_dims=1, max_dims=3))
        idx_shape = (draw(st.integers(1, 4)),) + s[1:]
        return draw(array(dtype, s)), draw(_index_array(s[0], idx_shape))
    return draw()


spec("take_along_axis", lambda x, i: fnp.take_along_axis(x, i, 0),
     lambda x, i: np.take_along_axis(x, i, 0), _along_args, covers=("gather",),
     dtypes=ALL_DTYPES)

# --- sort, argsort, searchsorted -----------------------------------------------------------
spec("sort", lambda x: fnp.sort(x, axis=0), lambda x: np.sort(x, axis=0),
     unary(1, 3, distinct=True), covers=("sort",), dtypes=ALL_DTYPES)
spec("sort[flat]", lambda x: fnp.sort(x, axis=None), lambda x: np.sort(x, axis=None),
     unary(0, 3, distinct=True), covers=("sort",))
spec("argsort", fnp.argsort, lambda x: np.argsort(x, kind="stable"), unary(1, 3),
     covers=("argsort",), dtypes=ALL_DTYPES, diff_argnums=())


def _searchsorted_args(dtype):
    return st.tuples(shapes(1, 1), shapes(0, 2)).flatmap(
        lambda s: st.tuples(array(dtype, s[0]), array(dtype, s[1])))


# The sorted array is sorted inside the function: any draw (or shuffle) of it is valid.
spec("searchsorted",
     lambda a, v: tuple(fnp.searchsorted(fnp.sort(a), v, side=s) for s in ("left", "right")),
     lambda a, v: tuple(np.searchsorted(np.sort(a), v, side=s) for s in ("left", "right")),
     _searchsorted_args, covers=("searchsorted", "sort"), dtypes=ALL_DTYPES, diff_argnums=())

# --- flip, roll, diagonals, triangles, select ----------------------------------------------
spec("flip", fnp.flip, np.flip, unary(0, 3), covers=("slice",), dtypes=ALL_DTYPES)
spec("roll", lambda x: fnp.roll(x, (1, -3, 1), (0, -1, 0)),
     lambda x: np.roll(x, (1, -3, 1), (0, -1, 0)), unary(2, 3),
     covers=("slice", "concatenate"), dtypes=ALL_DTYPES)
OFFSETS = (0, 1, -2)
spec("diagonal", lambda x: tuple(fnp.diagonal(x, k, 0, -1) for k in OFFSETS),
     lambda x: tuple(np.diagonal(x, k, 0, -1) for k in OFFSETS), unary(2, 3),
     covers=("slice",), dtypes=ALL_DTYPES)
spec("diag", lambda v: tuple(fnp.diag(v, k) for k in OFFSETS),
     lambda v: tuple(np.diag(v, k) for k in OFFSETS), unary(1, 2),
     covers=("update_slice", "slice"), dtypes=ALL_DTYPES)
spec("trace", lambda x: fnp.trace(x, 1, -1, 0), lambda x: np.trace(x, 1, -1, 0),
     unary(2, 3), covers=("slice",), dtypes=ALL_DTYPES)
spec("tril_triu", lambda x: (fnp.tril(x), fnp.tril(x, -1), fnp.triu(x), fnp.triu(x, 1)),
     lambda x: (np.tril(x), np.tril(x, -1), np.triu(x), np.triu(x, 1)), unary(1, 3),
     covers=("where",), dtypes=ALL_DTYPES)


def _select_args(dtype):
    return hnp.mutually_broadcastable_shapes(num_shapes=4, max_dims=2, max_side=3).flatmap(
        lambda bs: st.tuples(array("bool", bs.input_shapes[0]),
                             array("bool", bs.input_shapes[1]),
                             array(dtype, bs.input_shapes[2]),
                             array(dtype, bs.input_shapes[3])))


spec("select", lambda c1, c2, a, b: fnp.select([c1, c2], [a, b], default=1),
     lambda c1, c2, a, b: np.select([c1, c2], [a, b], default=1), _select_args,
     covers=("where",), dtypes=ALL_DTYPES)
