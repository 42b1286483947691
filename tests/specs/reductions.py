"""Specs for the reductions and scans (sum, prod, max, min, all, any, argmax, argmin, cumsum,
cumprod) and the composites built on them (mean, var, std, logsumexp, average, ...).

Static arguments (axis, keepdims, ddof) are not drawn as arguments, since every argument of
a spec is an array that vmap may batch; instead each spec derives them from the drawn
*shape* with :func:`derived`, so hypothesis varies them with the shapes (None, ints,
negative ints, tuples, empty tuples) and every transform of one example sees the same ones.
"""

import random
import zlib

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import functorch_lite.numpy as fnp
from specs import floats_in, shapes, spec

INT_TYPES = ("float32", "float64", "int64")


def derived(shape, salt):
    """A ``random.Random`` seeded by ``shape``: static choices that vary with the shape."""
    return random.Random(zlib.crc32(repr((tuple(shape), salt)).encode()))


def axis_for(shape, salt="axis"):
    """None, an int, a negative int or a tuple (possibly empty, mixed signs) of axes."""
    rng, nd = derived(shape, salt), len(shape)
    kind = rng.randrange(5) if nd else rng.randrange(2) * 4
    if kind == 0:
        return None
    if kind == 1:
        return rng.randrange(nd)
    if kind == 2:
        return rng.randrange(nd) - nd
    chosen = [a for a in range(nd) if rng.random() < 0.5]
    return tuple(a - nd if rng.random() < 0.5 else a for a in chosen)


def one_axis_for(shape, salt="one_axis"):
    """None or a single (possibly negative) axis, for argmax/argmin/cumsum/cumprod."""
    rng, nd = derived(shape, salt), len(shape)
    return None if nd == 0 or rng.random() < 0.3 else rng.randrange(-nd, nd)


def keepdims_for(shape):
    return derived(shape, "keepdims").random() < 0.5


def reduced_size(shape, axis):
    axes = range(len(shape)) if axis is None else (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes]))


# --- strategies ----------------------------------------------------------------------------
def _elements(dtype, values):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "iu":
        return st.integers(-3, 3)
    return values


def arrays_of(values=None, min_side=1, max_side=4, min_dims=0, max_dims=3, unique=False):
    """``args(dtype)``: one array; floats from ``values`` (default [-3, 3])."""
    values = floats_in(-3, 3) if values is None else values

    def args(dtype):
        elements = _elements(dtype, values)
        if unique and np.dtype(dtype).kind in "iuf":
            # Distinct values, spaced apart: max/min/sort-like ops are differentiable there.
            elements = st.integers(-200, 200).map(
                lambda v, dt=np.dtype(dtype): dt.type(v / 16 if dt.kind == "f" else v))
        return shapes(min_dims, max_dims, min_side, max_side).flatmap(
            lambda s: st.tuples(hnp.arrays(dtype, s, elements=elements, unique=unique)))
    return args


# Products: values of moderate size with frequent exact zeros (the derivative must be exact
# there: finite differences of a multilinear function are exact too).
WITH_ZEROS = st.one_of(st.just(0.0), st.just(0.0), floats_in(-1.5, 1.5))
WITH_NANS = st.one_of(st.just(float("nan")), floats_in(-3, 3))
WITH_NEG_INF = st.one_of(st.just(float("-inf")), floats_in(-3, 3), floats_in(-3, 3))


# --- the primitives -------------------------------------------------------------------------
def _reduction(name, fn, ref, **kw):
    spec(name, lambda x: fn(x, axis=axis_for(x.shape), keepdims=keepdims_for(x.shape)),
         lambda x: ref(x, axis=axis_for(x.shape), keepdims=keepdims_for(x.shape)), **kw)


_reduction("sum", fnp.sum, np.sum, args=arrays_of(min_side=0),
           dtypes=INT_TYPES + ("bool",), covers=("reduce_sum",))
_reduction("prod", fnp.prod, np.prod, args=arrays_of(WITH_ZEROS, min_side=0),
           dtypes=INT_TYPES + ("bool",), covers=("reduce_prod",))
_reduction("max", fnp.max, np.max, args=arrays_of(unique=True), dtypes=INT_TYPES + ("bool",),
           covers=("reduce_max",))
_reduction("min", fnp.min, np.min, args=arrays_of(unique=True), dtypes=INT_TYPES + ("bool",),
           covers=("reduce_min",))
_reduction("all", fnp.all, np.all, args=arrays_of(min_side=0), dtypes=("bool", "int64",
                                                                       "float32"),
           covers=("reduce_and",), diff_argnums=())
_reduction("any", fnp.any, np.any, args=arrays_of(min_side=0), dtypes=("bool", "int64",
                                                                       "float32"),
           covers=("reduce_or",), diff_argnums=())

for _name in ("argmax", "argmin"):
    spec(_name, lambda x, f=getattr(fnp, _name): f(x, axis=one_axis_for(x.shape),
                                                   keepdims=keepdims_for(x.shape)),
         lambda x, f=getattr(np, _name): f(x, axis=one_axis_for(x.shape),
                                           keepdims=keepdims_for(x.shape)),
         arrays_of(), dtypes=INT_TYPES + ("bool",), diff_argnums=())

spec("cumsum", lambda x: fnp.cumsum(x, axis=one_axis_for(x.shape)),
     lambda x: np.cumsum(x, axis=one_axis_for(x.shape)), arrays_of(min_side=0),
     dtypes=INT_TYPES + ("bool",))
spec("cumprod", lambda x: fnp.cumprod(x, axis=one_axis_for(x.shape)),
     lambda x: np.cumprod(x, axis=one_axis_for(x.shape)), arrays_of(WITH_ZEROS),
     dtypes=INT_TYPES)


# The reversed scans are only reachable through the derivative rules: test them directly.
def _reverse_scan(prim, ref):
    def fn(x):
        from functorch_lite.core import bind

        axis = one_axis_for(x.shape) or 0
        return bind(prim, x, axis=axis % x.ndim, reverse=True)

    def want(x):
        axis = one_axis_for(x.shape) or 0
        return np.flip(ref(np.flip(x, axis), axis=axis), axis)
    return fn, want


def _register_reverse_scans():
    from functorch_lite.primitives import reductions as red

    for name, prim, ref in (("cumsum", red.cumsum_p, np.cumsum),
                            ("cumprod", red.cumprod_p, np.cumprod)):
        fn, want = _reverse_scan(prim, ref)
        spec(f"{name}_reverse", fn, want, arrays_of(WITH_ZEROS, min_dims=1),
             dtypes=INT_TYPES, covers=(name,))


_register_reverse_scans()


# --- composites ---------------------------------------------------------------------------
def _ddof_for(shape, axis):
    return derived(shape, "ddof").randrange(min(2, reduced_size(shape, axis)))


def _groups_of_two(x):
    """std/var with ddof need at least two elements per group (axis=() gives groups of one)."""
    return reduced_size(x.shape, axis_for(x.shape)) >= 2


_reduction("mean", fnp.mean, np.mean, args=arrays_of(), dtypes=INT_TYPES)
spec("var", lambda x: fnp.var(x, axis_for(x.shape), ddof=_ddof_for(x.shape, axis_for(x.shape)),
                              keepdims=keepdims_for(x.shape)),
     lambda x: np.var(x, axis_for(x.shape), ddof=_ddof_for(x.shape, axis_for(x.shape)),
                      keepdims=keepdims_for(x.shape)),
     arrays_of(min_dims=1, min_side=2), dtypes=INT_TYPES, extra={"valid": _groups_of_two})
spec("std", lambda x: fnp.std(x, axis_for(x.shape), ddof=_ddof_for(x.shape, axis_for(x.shape)),
                              keepdims=keepdims_for(x.shape)),
     lambda x: np.std(x, axis_for(x.shape), ddof=_ddof_for(x.shape, axis_for(x.shape)),
                      keepdims=keepdims_for(x.shape)),
     arrays_of(min_dims=1, min_side=2, unique=True), extra={"valid": _groups_of_two}, rtol=1e-4)
_reduction("ptp", fnp.ptp, np.ptp, args=arrays_of(unique=True), dtypes=INT_TYPES)
_reduction("count_nonzero", fnp.count_nonzero,
           lambda x, axis, keepdims: np.asarray(np.count_nonzero(x, axis, keepdims=keepdims),
                                                dtype=np.int64),
           args=arrays_of(min_side=0), dtypes=("bool", "int64", "float32"), diff_argnums=())
_reduction("nansum", fnp.nansum, np.nansum, args=arrays_of(WITH_NANS), dtypes=INT_TYPES)


def _no_all_nan_group(x):
    with np.errstate(all="ignore"):
        return not np.isnan(x).all(axis=axis_for(x.shape)).any() if x.size else True


_reduction("nanmean", fnp.nanmean, np.nanmean, args=arrays_of(WITH_NANS),
           extra={"valid": _no_all_nan_group})


def _logsumexp_ref(x, axis=None, keepdims=False):
    axes = tuple(range(x.ndim)) if axis is None else axis
    shift = np.max(x, axis=axes, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0)
    out = np.log(np.sum(np.exp(x - shift), axis=axes, keepdims=True)) + shift
    return out if keepdims else np.squeeze(out, axis=axes)


def _a_finite_entry_per_group(x):
    return bool(np.isfinite(x).any(axis=axis_for(x.shape)).all())


_reduction("logsumexp", fnp.logsumexp, _logsumexp_ref, args=arrays_of(WITH_NEG_INF),
           extra={"valid": _a_finite_entry_per_group})


def _average_args(dtype):
    """``a`` and positive weights of ``a``'s shape."""
    return shapes().flatmap(lambda s: st.tuples(
        hnp.arrays(dtype, s, elements=floats_in(-3, 3)),
        hnp.arrays(dtype, s, elements=floats_in(0.5, 2))))


def _average_1d_args(dtype):
    """``a`` and 1-D positive weights along the single axis :func:`one_axis_for` picks."""
    def build(s):
        axis = one_axis_for(s, "average") or 0
        return st.tuples(hnp.arrays(dtype, s, elements=floats_in(-3, 3)),
                         hnp.arrays(dtype, (s[axis],), elements=floats_in(0.5, 2)))
    return shapes(min_dims=1).flatmap(build)


spec("average", lambda a, w: fnp.average(a, axis_for(a.shape), w),
     lambda a, w: np.average(a, axis_for(a.shape), w), _average_args)
spec("average_1d_weights",
     lambda a, w: fnp.average(a, one_axis_for(a.shape, "average") or 0, w, returned=True),
     lambda a, w: np.average(a, one_axis_for(a.shape, "average") or 0, w, returned=True),
     _average_1d_args)


# --- order statistics (through fnp.sort) ---------------------------------------------------
QUANTILE_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def q_for(shape):
    """A Python float (weakly typed) or a float64 array of quantiles (their axes lead)."""
    return derived(shape, "q").choice([0.5, 0.3, 1.0, 0.0, np.array([0.1, 0.75]),
                                       np.array([[0.0], [0.6]])])


def method_for(shape):
    return derived(shape, "method").choice(QUANTILE_METHODS)


for _name, _scale in (("quantile", 1), ("percentile", 100)):
    spec(_name,
         lambda x, f=getattr(fnp, _name), k=_scale: f(
             x, q_for(x.shape) * k, axis_for(x.shape), method=method_for(x.shape),
             keepdims=keepdims_for(x.shape)),
         lambda x, f=getattr(np, _name), k=_scale: f(
             x, q_for(x.shape) * k, axis_for(x.shape), method=method_for(x.shape),
             keepdims=keepdims_for(x.shape)),
         arrays_of(unique=True), dtypes=INT_TYPES, covers=("sort",))
_reduction("median", fnp.median, np.median, args=arrays_of(unique=True), dtypes=INT_TYPES,
           covers=("sort",))
