"""Indexing: random index tuples against NumPy, ``.at`` semantics, errors, eager-only
functions and batching cases that the per-spec property tests (``specs/indexing.py``,
which fix each index's recipe) do not reach."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite.core import ConcretizationError, Trace, Tracer
from functorch_lite.primitives import indexing as ix

RNG = np.random.RandomState(0)


def randn(*shape):
    return RNG.standard_normal(shape)


def assert_same(got, want):
    got = np.asarray(got)
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    np.testing.assert_array_equal(got, want)


def check_linear_grads(f, x):
    """Indexing is linear in x: one order of derivatives checks the rules."""
    fl.debug.check_grads(f, (x,), order=1, modes=("fwd", "rev"))


# --------------------------------------------------------------------------------------
# Random indices against NumPy
# --------------------------------------------------------------------------------------
@st.composite
def basic_case(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return np.arange(float(np.prod(shape))).reshape(shape), index


@given(basic_case())
def test_basic_indices_match_numpy(case):
    x, index = case
    assert_same(fnp.asarray(x)[index], x[index])
    assert_same(fnp.getitem(fnp.asarray(x), index), x[index])


@given(basic_case())
def test_basic_indices_derivatives_and_vmap(case):
    x, index = case
    check_linear_grads(lambda x: fnp.getitem(x, index), x)
    batch = np.stack([x, 2 * x, -x], axis=-1 if x.ndim else 0)
    ax = -1 if x.ndim else 0
    got = fl.vmap(lambda x: x[index], in_axes=ax)(batch)
    assert_same(got, np.stack([np.moveaxis(batch, ax, 0)[k][index] for k in range(3)]))


@st.composite
def advanced_case(draw):
    """A random mix of ints, slices, None, ... and broadcasting integer arrays: arrays
    adjacent or separated (NumPy then moves their dimensions first)."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    array_shapes = draw(hnp.mutually_broadcastable_shapes(
        num_shapes=len(shape), max_dims=2, max_side=3)).input_shapes
    kinds = draw(st.lists(st.sampled_from(["array", "slice", "int", "none"]),
                          min_size=len(shape), max_size=len(shape)))
    kinds[draw(st.integers(0, len(shape) - 1))] = "array"
    if len(shape) > 1 and draw(st.booleans()):  # arrays first and last, apart
        kinds[0] = kinds[-1] = "array"
        kinds[1:-1] = ["slice" if k == "array" else k for k in kinds[1:-1]]
    entries = []
    for n, a_shape, kind in zip(shape, array_shapes, kinds, strict=True):
        if kind == "array":
            if len(shape) == 2 and entries and isinstance(entries[-1], np.ndarray):
                entries.append(None)  # two arrays with a new axis between them
            entries.append(draw(hnp.arrays(np.int64, a_shape, elements=st.integers(-n, n - 1))))
        elif kind == "slice":
            entries.append(slice(draw(st.none() | st.integers(-n, n)),
                                 draw(st.none() | st.integers(-n - 1, n + 1)),
                                 draw(st.sampled_from([None, 1, 2, -1, -2]))))
        elif kind == "int":
            entries.append(draw(st.integers(-n, n - 1)))
        else:  # None before a full slice: the axis stays, one new axis appears
            entries.extend([None, slice(None)])
    if draw(st.booleans()):  # an Ellipsis standing for the trailing axes
        entries = entries[:draw(st.integers(1, len(entries)))] + [Ellipsis]
    return np.arange(float(np.prod(shape))).reshape(shape), tuple(entries)


@given(advanced_case())
def test_advanced_indices_match_numpy(case):
    x, index = case
    assert_same(fnp.asarray(x)[index], x[index])


@given(advanced_case())
def test_advanced_indices_derivatives(case):
    x, index = case
    check_linear_grads(lambda x: x[index], x)


@given(advanced_case(), st.booleans())
def test_advanced_indices_vmap(case, batch_arrays):
    """Batched x, and (optionally) batched index arrays."""
    x, index = case
    arrays = [e for e in index if isinstance(e, np.ndarray)]
    batch_arrays = batch_arrays and bool(arrays)
    xs = np.stack([x, x + 100, x + 200])
    # Each example reads its own (shuffled) copy of the index arrays.
    arrays_b = [np.stack([a, RNG.permutation(a.ravel()).reshape(a.shape), a[...]]) for a in
                arrays]

    def f(x, *arrays):
        it = iter(arrays)
        return x[tuple(next(it) if isinstance(e, np.ndarray) else e for e in index)]

    got = fl.vmap(f, in_axes=(0,) + (0 if batch_arrays else None,) * len(arrays))(
        xs, *(arrays_b if batch_arrays else arrays))
    want = np.stack([f(xs[k], *([a[k] for a in arrays_b] if batch_arrays else arrays))
                     for k in range(3)])
    assert_same(got, np.asarray(want))


@st.composite
def mask_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    start = draw(st.integers(0, len(shape) - 1))
    stop = draw(st.integers(start + 1, len(shape)))
    mask = draw(hnp.arrays(np.bool_, shape[start:stop]))
    index = (slice(None),) * start + (mask,)
    if draw(st.booleans()) and stop < len(shape):
        index += (draw(st.integers(-shape[stop], shape[stop] - 1)),)
    return np.arange(float(np.prod(shape))).reshape(shape), index


@given(mask_case())
def test_boolean_masks_match_numpy(case):
    x, index = case
    assert_same(fnp.asarray(x)[index], x[index])
    check_linear_grads(lambda x: x[index], x)
    # The mask is a constant of the vmapped function: fine (its values are known).
    got = fl.vmap(lambda x: x[index])(np.stack([x, -x]))
    assert_same(got, np.stack([x[index], -x[index]]))


def test_mask_with_integer_array_and_fnp_mask():
    x = np.arange(24.0).reshape(2, 3, 4)
    mask = np.array([True, False, True])
    assert_same(fnp.asarray(x)[[1, 0], mask], x[[1, 0], mask])
    assert_same(fnp.asarray(x)[:, fnp.asarray(mask), 1:], x[:, mask, 1:])
    mask2 = [[True, False, True, False]] * 3  # a nested list: one 2-D mask
    assert_same(fnp.asarray(x)[:, mask2], x[:, np.array(mask2)])


def test_empty_and_zero_size_indices():
    x = np.arange(6.0).reshape(2, 3)
    assert_same(fnp.asarray(x)[[]], x[[]])
    assert_same(fnp.asarray(x)[:, []], x[:, []])
    assert_same(fnp.asarray(x)[x > 100], x[x > 100])
    assert_same(fnp.asarray(x)[2:1], x[2:1])
    assert_same(fnp.asarray(x)[np.int64(1), np.int32(-1)], x[1, -1])
    assert_same(fnp.asarray(x)[fnp.asarray(1)], x[1])


def test_index_arrays_of_any_integer_dtype_and_fl_arrays():
    x = np.arange(10.0)
    for dtype in (np.int8, np.int32, np.uint8, np.int64):
        idx = np.array([3, 1], dtype)
        assert_same(fnp.asarray(x)[idx], x[idx])
        assert_same(fnp.asarray(x)[fnp.asarray(idx)], x[idx])


# --------------------------------------------------------------------------------------
# The fast path and the static index
# --------------------------------------------------------------------------------------
def test_eager_basic_indexing_returns_arrays_not_scalars():
    x = fnp.asarray(np.arange(6.0).reshape(2, 3))
    y = x[1, 2]
    assert type(y) is fl.Array and y.shape == () and float(y) == 5.0
    assert type(x[0]) is fl.Array


def test_static_index_is_hashable_and_compares_by_value():
    a = ix.StaticIndex((slice(1, None, 2), None, 0, Ellipsis))
    b = ix.StaticIndex((slice(1, None, 2), None, 0, Ellipsis))
    c = ix.StaticIndex((slice(1, None, 1), None, 0, Ellipsis))
    assert a == b and hash(a) == hash(b) and a != c
    assert repr(ix.StaticIndex((slice(1, None, 2), ix.ARRAY, None))) == "[1::2, <array>, None]"


def test_index_layout_places_the_advanced_block_like_numpy():
    shape = (5, 6, 7, 8)
    cases = [(ix.ARRAY, slice(None), ix.ARRAY), (slice(None), ix.ARRAY, ix.ARRAY),
             (slice(None), ix.ARRAY, None, ix.ARRAY), (slice(None), ix.ARRAY, Ellipsis, 0),
             (None, 1, slice(None), ix.ARRAY), (Ellipsis, ix.ARRAY)]
    for entries in cases:
        arrays = [np.zeros((2, 3), np.int64) for e in entries if e is ix.ARRAY]
        it = iter(arrays)
        want = np.empty(shape)[tuple(next(it) if e is ix.ARRAY else e for e in entries)]
        got, _, _ = ix.index_layout(shape, entries, [a.shape for a in arrays])
        assert got == want.shape, entries


# --------------------------------------------------------------------------------------
# .at[...] semantics
# --------------------------------------------------------------------------------------
def test_at_repeated_indices():
    x = fnp.zeros(4)
    assert_same(x.at[[0, 0, 2, 0]].add(1.0), np.array([3, 0, 1, 0], np.float32))
    assert_same(fnp.ones(3).at[[1, 1, 1]].multiply(2.0), np.array([1, 8, 1], np.float32))
    v = np.array([5.0, 1.0, 3.0], np.float32)
    assert_same(x.at[[2, 2, 2]].min(v), np.array([0, 0, 0, 0], np.float32))
    assert_same(x.at[[2, 2, 2]].max(v), np.array([0, 0, 5, 0], np.float32))
    want = np.zeros(4, np.float32)
    want[[1, 1, 3]] = [7.0, 8.0, 9.0]  # NumPy: the last repeated update wins
    assert_same(x.at[[1, 1, 3]].set(np.array([7.0, 8.0, 9.0], np.float32)), want)


def test_at_broadcasts_values_keeps_dtype_and_does_not_mutate():
    x = fnp.asarray(np.arange(6).reshape(2, 3))
    y = x.at[:, 1].set(7.9)  # cast to x's int dtype, broadcast to the indexed shape
    assert_same(y, np.array([[0, 7, 2], [3, 7, 5]]))
    assert_same(x, np.arange(6).reshape(2, 3))
    assert_same(x.at[0].add(np.array([1, 2, 3], np.int32)), np.array([[1, 3, 5], [3, 4, 5]]))
    f32 = fnp.zeros((2, 2))
    assert f32.at[0, 0].set(np.float64(1.5)).dtype == np.float32
    assert_same(x.at[1, ::-1].get(), np.array([5, 4, 3]))
    view = x[0]
    view.at[0].set(100)  # updating a slice never writes into the array it came from
    assert_same(x, np.arange(6).reshape(2, 3))


def test_at_matches_numpy_for_mixed_indices():
    x = randn(3, 4, 5)
    i, j = np.array([[0, 2, 2]]), np.array([1, 1, 0])
    for index in [(i, slice(None), j), (slice(1, None), i), (Ellipsis, j), (i[0] > 0,),
                  (None, 1, [True, False, True, True])]:
        v = randn(*x[index].shape)
        want = x.copy()
        np.add.at(want, index, v)
        np.testing.assert_allclose(fnp.asarray(x).at[index].add(v), want)
        want = x.copy()
        want[index] = v
        np.testing.assert_allclose(fnp.asarray(x).at[index].set(v), want)


def test_at_set_derivative_goes_to_the_update_that_was_written():
    x, v = randn(4), randn(3)
    index = [1, 1, 3]
    g_x, g_v = fl.grad(lambda x, v: fnp.sum(x.at[index].set(v) * fnp.arange(1.0, 5.0)),
                       argnums=(0, 1))(x, v)
    np.testing.assert_allclose(g_x, [1, 0, 3, 0])
    np.testing.assert_allclose(g_v, [0, 2, 4])  # the first update to 1 was overwritten
    fl.debug.check_grads(lambda x, v: x.at[index].set(v), (x, v), order=2)


def test_at_add_min_max_derivatives():
    x, v = randn(4), randn(3)
    index = [0, 0, 2]
    fl.debug.check_grads(lambda x, v: x.at[index].add(v), (x, v), order=2)
    x = np.array([0.0, 1.0, 2.0, 3.0])
    v = np.array([5.0, -1.0, 2.0])  # at 0: -1 wins over 0 and 5; at 2: a tie 2 == 2
    g_x, g_v = fl.grad(lambda x, v: fnp.sum(x.at[index].min(v)), argnums=(0, 1))(x, v)
    np.testing.assert_allclose(g_x, [0, 1, 0.5, 1])
    np.testing.assert_allclose(g_v, [0, 1, 0.5])
    t_out = fl.jvp(lambda x, v: x.at[index].max(v), (x, v), (np.ones(4), np.ones(3)))[1]
    np.testing.assert_allclose(t_out, [1, 1, 1, 1])


def test_at_multiply_derivatives():
    x, v = randn(4), randn(2)
    fl.debug.check_grads(lambda x, v: x.at[[3, 0]].multiply(v), (x, v), order=2)
    fl.debug.check_grads(lambda x: x.at[[3, 3]].multiply(v), (x,), order=2)
    # Traced indices cannot be checked for repeats, unless the caller promises.
    f = fl.vmap(lambda i, v: fnp.sum(fnp.asarray(x).at[i].multiply(v, unique_indices=True)))
    g = fl.vmap(fl.grad(lambda v, i: fnp.sum(fnp.asarray(x).at[i].multiply(
        v, unique_indices=True))))(np.stack([v, v]), np.array([[0, 1], [2, 3]]))
    np.testing.assert_allclose(g, [x[[0, 1]], x[[2, 3]]])
    assert f(np.array([[0, 1]]), v[None]).shape == (1,)
    with pytest.raises(NotImplementedError, match=r"multiply\(v\).*derivative"):
        fl.grad(lambda v: fnp.sum(fnp.asarray(x).at[[1, 1]].multiply(v)))(v)
    with pytest.raises(NotImplementedError, match="multiply"):
        fl.jvp(lambda v: fnp.asarray(x).at[[1, 1]].multiply(v), (v,), (v,))


def test_at_under_vmap_with_batched_indices():
    x = randn(5, 3)
    i = np.array([0, 4, 4])
    v = randn(3, 3)
    got = fl.vmap(lambda i, v: fnp.asarray(x).at[i].add(v))(i, v)
    want = np.stack([x + np.eye(5)[i[k]][:, None] * v[k] for k in range(3)])
    np.testing.assert_allclose(got, want)
    # a traced scalar index under vmap reads a different row per example
    np.testing.assert_allclose(fl.vmap(lambda i: fnp.asarray(x)[i, 1:])(i), x[i, 1:])
    gv = fl.vmap(fl.grad(lambda v, i: fnp.sum(fnp.asarray(x).at[i].set(v) ** 2)))(v, i)
    np.testing.assert_allclose(gv, 2 * v)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------
class _OpaqueTrace(Trace):
    """A trace that knows shapes only: every value is abstract (like jit's)."""

    transform_name = "an opaque transform"


class _OpaqueTracer(Tracer):
    __slots__ = ("value",)

    def __init__(self, trace, value):
        self._trace = trace
        self.value = value

    @property
    def aval(self):
        return fl.core.aval_of(self.value)


def test_boolean_mask_of_unknown_values_raises_naming_the_fix():
    tracer = _OpaqueTracer(_OpaqueTrace(None), np.array([True, False, True]))
    with pytest.raises(ConcretizationError, match=r"fnp.getitem.*bool\[3\].*fnp.where"):
        fnp.arange(3.0)[tracer]
    with pytest.raises(ConcretizationError, match=r"fnp.nonzero.*fnp.where"):
        fnp.nonzero(tracer)
    with pytest.raises(ConcretizationError, match=r"vmap.*fnp.where"):
        fl.vmap(lambda m: fnp.arange(3.0)[m])(np.ones((2, 3), bool))
    with pytest.raises(ConcretizationError, match="fnp.argwhere"):
        fl.jit(fnp.argwhere)(np.ones(3))


def test_index_errors_name_the_function_and_shapes():
    x = fnp.zeros((2, 3))
    with pytest.raises(IndexError, match=r"fnp.getitem: index 3 is out of bounds for axis 1 "
                                         r"with size 3.*\(2, 3\).*-n..n-1"):
        x[0, 3]
    with pytest.raises(IndexError, match=r"fnp.getitem: index -3 is out of bounds"):
        x[-3]
    with pytest.raises(IndexError, match=r"fnp.getitem.*out of bounds.*<i64\[2\] array>"):
        x[:, [0, 5]]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="integer or boolean"):
        x[np.array([0.0])]
    with pytest.raises(IndexError, match=r"boolean index of shape \(3,\)"):
        x[[True, False, True]]
    with pytest.raises(TypeError, match="scalar boolean"):
        x[True]
    with pytest.raises(IndexError, match=r"x.at\[0, 7\].add.*out of bounds"):
        x.at[0, 7].add(1.0)
    with pytest.raises(IndexError, match=r"x.at\[<i64\[1\] array>\].set.*out of bounds"):
        x.at[np.array([4])].set(1.0)
    with pytest.raises(ValueError, match=r"x.at\[0\].set: values of shape \(2,\) cannot be "
                                         r"broadcast to the indexed shape \(3,\)"):
        x.at[0].set(np.ones(2))
    with pytest.raises(TypeError, match=r"\.at\[0\]\.set\(v\)"):
        x[0] = 1.0


def test_out_of_bounds_under_grad_and_vmap():
    with pytest.raises(IndexError, match="fnp.getitem"):
        fl.grad(lambda x: fnp.sum(x[np.array([3])]))(np.zeros(3))
    with pytest.raises(IndexError, match="out of bounds"):
        fl.vmap(lambda i: fnp.zeros(3)[i])(np.array([0, 3]))


# --------------------------------------------------------------------------------------
# Eager-only functions, take, sort, searchsorted
# --------------------------------------------------------------------------------------
def test_nonzero_argwhere_compress_match_numpy():
    x = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
    for got, want in zip(fnp.nonzero(x), np.nonzero(x), strict=True):
        assert_same(got, want)
    assert_same(fnp.argwhere(x), np.argwhere(x))
    assert_same(fnp.flatnonzero(x), np.flatnonzero(x))
    assert_same(fnp.where(fnp.asarray(x) > 0)[0], np.where(x > 0)[0])
    assert_same(fnp.compress([False, True], x, axis=0), np.compress([False, True], x, axis=0))
    assert_same(fnp.compress(x.ravel() > 0, x), np.compress(x.ravel() > 0, x))
    # Under grad the values are known, so data-dependent shapes are fine.
    g = fl.grad(lambda x: fnp.sum(x[fnp.nonzero(x > 0)] ** 2))(x)
    np.testing.assert_allclose(g, np.where(x > 0, 2 * x, 0))
    with pytest.raises(ValueError, match="0-d"):
        fnp.nonzero(1.0)


def test_take_modes_and_scalars():
    x = np.arange(12.0).reshape(3, 4)
    idx = np.array([[5, -7], [0, 13]])
    for mode in ("clip", "wrap"):
        assert_same(fnp.take(x, idx, axis=1, mode=mode), np.take(x, idx, axis=1, mode=mode))
    assert_same(fnp.take(x, 5), np.take(x, 5))
    assert_same(fnp.take(x, [2, 0], axis=0), np.take(x, [2, 0], axis=0))
    assert_same(fnp.asarray(x).take([1, 1], axis=-1), x.take([1, 1], axis=-1))
    with pytest.raises(IndexError, match="out of bounds"):
        fnp.take(x, [4], axis=1)
    with pytest.raises(ValueError, match="mode"):
        fnp.take(x, [0], mode="fill")


def test_take_along_axis_with_argsort_and_broadcasting():
    x = randn(3, 4)
    order = fnp.argsort(x, axis=0)
    assert_same(fnp.take_along_axis(x, order, axis=0), np.sort(x, axis=0))
    idx = np.array([[2], [0], [1]])
    assert_same(fnp.take_along_axis(x, idx, 1), np.take_along_axis(x, idx, 1))
    assert_same(fnp.take_along_axis(x[:1], idx, 1), np.take_along_axis(x[:1], idx, 1))
    assert_same(fnp.take_along_axis(x, np.array([5, 0]), None),
                np.take_along_axis(x, np.array([5, 0]), None))
    with pytest.raises(ValueError, match="as many dimensions"):
        fnp.take_along_axis(x, np.array([0]), 1)


def test_sort_derivative_follows_the_permutation():
    x = np.array([[3.0, -1.0, 2.0], [0.0, 5.0, 4.0]])
    g = fl.grad(lambda x: fnp.sum(fnp.sort(x) * np.array([1.0, 10.0, 100.0])))(x)
    np.testing.assert_allclose(g, [[100, 1, 10], [1, 100, 10]])
    np.testing.assert_allclose(fl.hessian(lambda x: fnp.sum(fnp.sort(x) ** 3))(x[0]),
                               np.diag(6 * x[0]))
    assert_same(fnp.asarray(x).sort(axis=0), np.sort(x, axis=0))
    assert_same(np.sort(fnp.asarray(x)), np.sort(x))  # NumPy interop dispatches to fnp


def test_argsort_is_stable_and_has_no_derivative():
    x = np.array([2.0, 1.0, 2.0, 1.0, 0.0])
    assert_same(fnp.argsort(x), np.argsort(x, kind="stable"))
    assert_same(fnp.argsort(x.reshape(1, 5), axis=None), np.argsort(x, kind="stable"))
    g = fl.grad(lambda x: fnp.sum(x[fnp.argsort(x)] * fnp.arange(5.0)))(x)
    np.testing.assert_allclose(g, np.argsort(np.argsort(x, kind="stable"), kind="stable"))


def test_searchsorted_batched_sorted_rows():
    rows = np.sort(randn(4, 6), axis=1)
    rows[1, 2] = rows[1, 3]  # a repeated value: left and right differ there
    v = np.concatenate([rows[:, 3:4], randn(4, 2)], axis=1)
    for side in ("left", "right"):
        got = fl.vmap(lambda a, v, side=side: fnp.searchsorted(a, v, side=side))(rows, v)
        want = np.stack([np.searchsorted(rows[k], v[k], side=side) for k in range(4)])
        assert_same(got, want)
    assert_same(fnp.searchsorted(rows[0], 0.0), np.searchsorted(rows[0], 0.0))
    assert_same(fnp.searchsorted(np.array([3.0, 1.0]), 2.0, sorter=np.array([1, 0])),
                np.searchsorted(np.array([3.0, 1.0]), 2.0, sorter=np.array([1, 0])))


# --------------------------------------------------------------------------------------
# Composites: flip, roll, diagonal, diag, trace, tril, triu, select
# --------------------------------------------------------------------------------------
def test_composites_match_numpy():
    x = randn(3, 4, 5)
    assert_same(fnp.flip(x, (0, 2)), np.flip(x, (0, 2)))
    assert_same(fnp.fliplr(x), np.fliplr(x))
    assert_same(fnp.flipud(x), np.flipud(x))
    assert_same(fnp.roll(x, 7), np.roll(x, 7))
    assert_same(fnp.roll(x, -2, axis=1), np.roll(x, -2, axis=1))
    assert_same(fnp.roll(np.zeros((0, 3)), 1, axis=0), np.roll(np.zeros((0, 3)), 1, axis=0))
    for offset in (-4, -1, 0, 2, 5):
        assert_same(fnp.diagonal(x, offset, 2, 0), np.diagonal(x, offset, 2, 0))
        assert_same(fnp.trace(x, offset, 1, 2), np.trace(x, offset, 1, 2))
        assert_same(fnp.diag(x[0], offset), np.diag(x[0], offset))
        assert_same(fnp.diag(x[0, 0], offset), np.diag(x[0, 0], offset))
        assert_same(fnp.tril(x, offset), np.tril(x, offset))
        assert_same(fnp.triu(x, offset), np.triu(x, offset))
    assert_same(fnp.diag([1, 2]), np.diag([1, 2]))
    assert_same(fnp.asarray(x).diagonal(1), x.diagonal(1))
    assert_same(fnp.asarray(x[0]).trace(), np.asarray(x[0].trace()))
    assert_same(fnp.tril(np.arange(3)), np.tril(np.arange(3)))
    cond = [x > 0.5, x < -0.5]
    assert_same(fnp.select(cond, [x, -x]), np.select(cond, [x, -x]))
    with pytest.raises(TypeError, match="boolean"):
        fnp.select([x], [x])
    with pytest.raises(ValueError, match="same length"):
        fnp.select(cond, [x])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        fnp.diag(x)


def test_composites_are_differentiable_and_batch():
    x = randn(4, 4)
    f = lambda x: fnp.diag(fnp.diagonal(fnp.roll(fnp.triu(x, 1), 1, 0), -1), 1) + fnp.flip(x)
    fl.debug.check_grads(f, (x,), order=2)
    got = fl.vmap(f)(np.stack([x, 2 * x]))
    np.testing.assert_allclose(got, np.stack([f(x), f(2 * x)]))
    np.testing.assert_allclose(fl.grad(lambda x: fnp.trace(x))(x), np.eye(4))


def test_jit_compiles_indexing():
    x = randn(3, 4)
    i = np.array([2, 0, 2])

    def f(x, i):
        y = x[1:, ::-1][:, i] + fnp.take_along_axis(x, fnp.argsort(x, 0), 0)[:2, :3]
        return fnp.sum(fnp.asarray(x).at[i, -1].add(1.0)) + fnp.sum(fnp.sort(y, axis=0) ** 2)

    np.testing.assert_allclose(fl.jit(f)(x, i), f(x, i))
    np.testing.assert_allclose(fl.jit(fl.grad(f))(x, i), fl.grad(f)(x, i))
