"""Specs for the shape primitives (reshape, broadcast_to, transpose, concatenate, pad) and
the shape composites (moveaxis ... stack, split, tile, repeat, pad modes, ...).

As in ``specs/reductions.py``, static arguments (new shapes, axes, widths, counts) are
derived from the drawn shapes with :func:`~specs.reductions.derived`, so every argument
of a spec stays an array that vmap may batch.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import functorch_lite.numpy as fnp
from specs import broadcast_pair_args, floats_in, shapes, spec
from specs.reductions import derived, one_axis_for

DTYPES = ("float32", "float64", "int64")


def _array(dtype, shape):
    dtype = np.dtype(dtype)
    elements = floats_in(-3, 3) if dtype.kind == "f" else (
        st.booleans() if dtype.kind == "b" else st.integers(-5, 5))
    return hnp.arrays(dtype, shape, elements=elements)


def one_array(min_dims=0, max_dims=3, min_side=1, max_side=4):
    def args(dtype):
        return shapes(min_dims, max_dims, min_side, max_side).flatmap(
            lambda s: st.tuples(_array(dtype, s)))
    return args


def _shape_spec(name, fn, ref, args=None, **kw):
    """A spec whose static arguments come from ``static(x.shape)``-style closures."""
    spec(name, fn, ref, args or one_array(), dtypes=kw.pop("dtypes", DTYPES), **kw)


# --- the primitives -------------------------------------------------------------------------
def new_shape_for(shape):
    """A new shape with the same number of elements, sometimes with a -1."""
    rng = derived(shape, "reshape")
    size = int(np.prod(shape))
    sides = list(shape)
    rng.shuffle(sides)
    kind = rng.randrange(4)
    if kind == 0:
        new = [size]
    elif kind == 1:
        new = sides + [1]
    elif kind == 2 and len(sides) >= 2:
        new = [sides[0] * sides[1]] + sides[2:]
    else:
        new = [1] + sides
    if new and size and rng.random() < 0.5:  # -1 is ambiguous for 0 elements
        new[rng.randrange(len(new))] = -1
    return tuple(new)


def target_for(shape):
    """A shape ``shape`` broadcasts to: new leading axes, size-1 axes stretched."""
    rng = derived(shape, "broadcast")
    lead = tuple(rng.randrange(1, 4) for _ in range(rng.randrange(3)))
    return lead + tuple(rng.randrange(1, 4) if d == 1 else d for d in shape)


def perm_for(shape):
    """None, or a permutation of the axes (with some negative entries)."""
    rng, nd = derived(shape, "perm"), len(shape)
    if rng.random() < 0.2:
        return None
    perm = list(range(nd))
    rng.shuffle(perm)
    return tuple(p - nd if rng.random() < 0.3 else p for p in perm)


def widths_for(shape, most=2):
    rng = derived(shape, ("widths", most))
    return tuple((rng.randrange(most + 1), rng.randrange(most + 1)) for _ in shape)


_shape_spec("reshape", lambda x: fnp.reshape(x, new_shape_for(x.shape)),
            lambda x: np.reshape(x, new_shape_for(x.shape)),
            one_array(min_side=0), dtypes=DTYPES + ("bool",))
_shape_spec("ravel", fnp.ravel, np.ravel, covers=("reshape",))
_shape_spec("broadcast_to", lambda x: fnp.broadcast_to(x, target_for(x.shape)),
            lambda x: np.broadcast_to(x, target_for(x.shape)))
_shape_spec("transpose", lambda x: fnp.transpose(x, perm_for(x.shape)),
            lambda x: np.transpose(x, perm_for(x.shape)), dtypes=DTYPES + ("bool",))
_shape_spec("pad", lambda x: fnp.pad(x, widths_for(x.shape)),
            lambda x: np.pad(x, widths_for(x.shape)), one_array(min_dims=1, min_side=0))


def several(count_axis, min_dims=1, max_dims=3, same=False):
    """``args(dtype)``: 2-3 arrays sharing a shape except along the axis that
    ``count_axis(ndim, count)`` picks (where sizes 0..3 are drawn), or all equal (``same``)."""
    def build(base, count, dtype):
        axis = None if same else count_axis(len(base), count)
        sides = st.lists(st.integers(0, 3), min_size=count, max_size=count)

        def arrays(sizes):
            out = []
            for n in sizes:
                s = list(base)
                if axis is not None:
                    s[axis] = n
                out.append(_array(dtype, tuple(s)))
            return st.tuples(*out)
        return sides.flatmap(arrays)

    def args(dtype):
        return st.tuples(shapes(min_dims, max_dims), st.integers(2, 3)).flatmap(
            lambda bc: build(bc[0], bc[1], dtype))
    return args


def concat_axis(ndim, count):
    return derived((ndim, count), "concatenate").randrange(-ndim, ndim)


spec("concatenate", lambda *xs: fnp.concatenate(xs, axis=concat_axis(xs[0].ndim, len(xs))),
     lambda *xs: np.concatenate(xs, axis=concat_axis(xs[0].ndim, len(xs))),
     several(concat_axis), dtypes=DTYPES)
spec("concatenate_flat", lambda *xs: fnp.concatenate(xs, axis=None),
     lambda *xs: np.concatenate(xs, axis=None),
     several(lambda nd, k: concat_axis(nd, k) if nd else None, min_dims=0),
     dtypes=DTYPES, covers=("concatenate",))


# --- composites: axes -----------------------------------------------------------------------
def move_for(shape):
    rng, nd = derived(shape, "moveaxis"), len(shape)
    k = rng.randrange(1, nd + 1)
    return tuple(rng.sample(range(-nd, 0), k)), tuple(rng.sample(range(nd), k))


def expand_for(shape):
    rng, nd = derived(shape, "expand_dims"), len(shape)
    out_nd = nd + rng.randrange(1, 3)
    axes = rng.sample(range(out_nd), out_nd - nd)
    return tuple(a - out_nd if rng.random() < 0.5 else a for a in axes)


def squeeze_for(shape):
    rng = derived(shape, "squeeze")
    ones = [i for i, d in enumerate(shape) if d == 1]
    if not ones or rng.random() < 0.3:
        return None
    return tuple(i - len(shape) if rng.random() < 0.5 else i
                 for i in rng.sample(ones, rng.randrange(1, len(ones) + 1)))


def swap_for(shape):
    rng, nd = derived(shape, "swapaxes"), len(shape)
    return rng.randrange(-nd, nd), rng.randrange(-nd, nd)


_shape_spec("moveaxis", lambda x: fnp.moveaxis(x, *move_for(x.shape)),
            lambda x: np.moveaxis(x, *move_for(x.shape)), one_array(min_dims=1),
            covers=("transpose",))
_shape_spec("swapaxes", lambda x: fnp.swapaxes(x, *swap_for(x.shape)),
            lambda x: np.swapaxes(x, *swap_for(x.shape)), one_array(min_dims=1),
            covers=("transpose",))
_shape_spec("expand_dims", lambda x: fnp.expand_dims(x, expand_for(x.shape)),
            lambda x: np.expand_dims(x, expand_for(x.shape)), covers=("reshape",))
_shape_spec("squeeze", lambda x: fnp.squeeze(x, squeeze_for(x.shape)),
            lambda x: np.squeeze(x, squeeze_for(x.shape)), one_array(max_side=2),
            covers=("reshape",))
for _name in ("atleast_1d", "atleast_2d", "atleast_3d"):
    _shape_spec(_name, getattr(fnp, _name), getattr(np, _name), covers=("reshape",))


# --- composites: joining ---------------------------------------------------------------------
spec("stack", lambda *xs: fnp.stack(xs, axis=concat_axis(xs[0].ndim + 1, len(xs))),
     lambda *xs: np.stack(xs, axis=concat_axis(xs[0].ndim + 1, len(xs))),
     several(None, min_dims=0, same=True), dtypes=DTYPES, covers=("concatenate",))
spec("broadcast_arrays", fnp.broadcast_arrays, np.broadcast_arrays, broadcast_pair_args(),
     dtypes=DTYPES, covers=("broadcast_to",))
spec("hstack", lambda *xs: fnp.hstack(xs), lambda *xs: np.hstack(xs),
     several(lambda nd, k: 0 if nd == 1 else 1), dtypes=DTYPES, covers=("concatenate",))
spec("hstack_scalars", lambda *xs: fnp.hstack(xs), lambda *xs: np.hstack(xs),
     several(None, min_dims=0, max_dims=0, same=True), dtypes=DTYPES,
     covers=("concatenate",))
spec("vstack", lambda *xs: fnp.vstack(xs), lambda *xs: np.vstack(xs),
     several(lambda nd, k: None if nd == 1 else 0), dtypes=DTYPES, covers=("concatenate",))
spec("dstack", lambda *xs: fnp.dstack(xs), lambda *xs: np.dstack(xs),
     several(lambda nd, k: 2 if nd == 3 else None), dtypes=DTYPES, covers=("concatenate",))


def _column_args(dtype):
    """1-D arrays of length n and 2-D ``(n, k)`` arrays, mixed."""
    def arrays(n, kinds):
        return st.tuples(*(_array(dtype, (n,) if k == 0 else (n, k)) for k in kinds))
    return st.tuples(st.integers(1, 4), st.lists(st.integers(0, 2), min_size=1, max_size=3)
                     ).flatmap(lambda nk: arrays(*nk))


spec("column_stack", lambda *xs: fnp.column_stack(xs), lambda *xs: np.column_stack(xs),
     _column_args, dtypes=DTYPES, covers=("concatenate",))


# --- composites: splitting, tiling, repeating -------------------------------------------------
def sections_for(shape):
    """An axis and a number of equal sections dividing its length, or split points."""
    rng = derived(shape, "split")
    axis = rng.randrange(-len(shape), len(shape))
    length = shape[axis]
    if rng.random() < 0.5:
        return rng.choice([d for d in range(1, length + 1) if length % d == 0]), axis
    return sorted(rng.randrange(-length - 1, length + 2) for _ in range(rng.randrange(3))), axis


def array_sections_for(shape):
    """An axis and any positive number of sections, or unsorted split points."""
    rng = derived(shape, "array_split")
    axis = rng.randrange(-len(shape), len(shape))
    if rng.random() < 0.5:
        return rng.randrange(1, 6), axis
    length = shape[axis]
    return [rng.randrange(-length - 1, length + 2) for _ in range(rng.randrange(4))], axis


def reps_for(shape):
    rng = derived(shape, "tile")
    return tuple(rng.randrange(3) for _ in range(rng.randrange(4)))


def repeats_for(shape):
    """An int count and an axis (None: flattened), or one count per element of the axis."""
    rng = derived(shape, "repeat")
    axis = one_axis_for(shape, "repeat")
    if axis is not None and rng.random() < 0.5:
        return [rng.randrange(3) for _ in range(shape[axis])], axis
    return rng.randrange(4), axis


_shape_spec("split", lambda x: fnp.split(x, *sections_for(x.shape)),
            lambda x: np.split(x, *sections_for(x.shape)), one_array(min_dims=1))
_shape_spec("array_split", lambda x: fnp.array_split(x, *array_sections_for(x.shape)),
            lambda x: np.array_split(x, *array_sections_for(x.shape)),
            one_array(min_dims=1, min_side=0))
_shape_spec("tile", lambda x: fnp.tile(x, reps_for(x.shape)),
            lambda x: np.tile(x, reps_for(x.shape)), covers=("broadcast_to", "reshape"))
_shape_spec("repeat", lambda x: fnp.repeat(x, *repeats_for(x.shape)),
            lambda x: np.repeat(x, *repeats_for(x.shape)))


# --- composites: pad modes -----------------------------------------------------------------
def constants_for(shape):
    rng = derived(shape, "constant_values")
    if rng.random() < 0.5:
        return rng.choice([1.5, -2.0, 7.0])
    return tuple((rng.randrange(-3, 4), rng.randrange(-3, 4)) for _ in shape)


_shape_spec("pad_constant",
            lambda x: fnp.pad(x, widths_for(x.shape), constant_values=constants_for(x.shape)),
            lambda x: np.pad(x, widths_for(x.shape), constant_values=constants_for(x.shape)),
            one_array(min_dims=1), covers=("pad",))
for _mode in ("edge", "reflect", "symmetric", "wrap"):
    # Widths up to 5 exceed the sides (up to 4): the modes' periodic continuation is tested.
    _shape_spec(f"pad_{_mode}",
                lambda x, m=_mode: fnp.pad(x, widths_for(x.shape, 5), mode=m),
                lambda x, m=_mode: np.pad(x, widths_for(x.shape, 5), mode=m),
                one_array(min_dims=1), covers=("concatenate",))


# --- composites: index arithmetic ------------------------------------------------------------
def _flat_index_args(dtype):
    """A shape (carried by a dummy array) and flat indices into it."""
    return shapes(1, 3).flatmap(lambda s: st.tuples(
        hnp.arrays("int64", st.integers(0, 4).map(lambda n: (n,)),
                   elements=st.integers(0, int(np.prod(s)) - 1)),
        hnp.arrays("float32", s, elements=st.just(0.0))))


spec("unravel_index", lambda i, like: fnp.unravel_index(i, like.shape),
     lambda i, like: np.unravel_index(i, like.shape), _flat_index_args, dtypes=("int64",),
     diff_argnums=())


def _multi_index_args(dtype):
    return shapes(1, 3).flatmap(lambda s: st.tuples(
        hnp.arrays("float32", s, elements=st.just(0.0)),
        *(hnp.arrays("int64", (3,), elements=st.integers(-2, d + 1)) for d in s)))


spec("ravel_multi_index",
     lambda like, *idx: fnp.ravel_multi_index(idx, like.shape, mode="wrap"),
     lambda like, *idx: np.ravel_multi_index(idx, like.shape, mode="wrap"),
     _multi_index_args, dtypes=("int64",), diff_argnums=())
