"""Shape functions: pad modes and constants, split/tile/repeat, stacking, index arithmetic,
derivatives of the composites, eager fast paths and error messages.

The property tests over every spec (``tests/specs/shape.py``) cover impl vs NumPy,
derivatives, vmap and jit; this file adds edge cases and what a spec cannot express.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import functorch_lite as fl
import functorch_lite.numpy as fnp

MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    np.testing.assert_array_equal(got, want)


# --- pad ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       widths=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=3,
                       max_size=3))
def test_pad_modes_match_numpy_for_any_widths(mode, shape, widths):
    x = np.arange(np.prod(shape), dtype=np.int64).reshape(shape)
    widths = tuple(widths[:len(shape)])
    same(fnp.pad(x, widths, mode=mode), np.pad(x, widths, mode=mode))


@pytest.mark.parametrize("pad_width", [2, (1,), (1, 2), ((1, 2),), ((1, 0), (0, 3)), [[2, 1]]])
def test_pad_width_forms(pad_width):
    x = np.arange(6.0).reshape(2, 3)
    same(fnp.pad(x, pad_width), np.pad(x, pad_width))


def test_pad_constant_values_forms_and_corners():
    x = np.arange(6).reshape(2, 3)
    for values in (5, (1, 2), ((7, 8), (9, 10)), -1.7):
        same(fnp.pad(x, ((1, 2), (2, 1)), constant_values=values),
             np.pad(x, ((1, 2), (2, 1)), constant_values=values))
    same(fnp.pad(x.astype(np.float32), 1, constant_values=-np.inf),
         np.pad(x.astype(np.float32), 1, constant_values=-np.inf))
    same(fnp.pad(np.float32(3.0), 2), np.pad(np.float32(3.0), 0))
    same(fnp.pad(x, 1, mode="empty"), np.pad(x, 1))


def test_pad_gradients():
    x = np.arange(6.0).reshape(2, 3)
    # Every copy of an element sends its cotangent back to it.
    g = fl.grad(lambda v: fnp.sum(fnp.pad(v, ((0, 0), (2, 2)), mode="edge")))(x)
    same(g, [[3.0, 1.0, 3.0], [3.0, 1.0, 3.0]])
    g = fl.grad(lambda v: fnp.sum(fnp.pad(v, ((0, 0), (2, 2)), mode="reflect")))(x)
    same(g, [[2.0, 3.0, 2.0], [2.0, 3.0, 2.0]])
    g = fl.grad(lambda v: fnp.sum(fnp.pad(v, 1, constant_values=9.0) ** 2))(x)
    same(g, 2 * x)
    # A traced constant value is differentiable: it fills the 20 - 6 border cells.
    c_grad = fl.grad(lambda c: fnp.sum(fnp.pad(fnp.asarray(x), 1, constant_values=c)))(2.0)
    assert float(c_grad) == 14.0
    for mode in MODES:
        fl.debug.check_grads(lambda v, m=mode: fnp.pad(v, ((1, 3), (2, 0)), mode=m), (x,),
                             order=2)


def test_pad_under_vmap_and_jit():
    x = np.arange(24.0).reshape(4, 2, 3)
    for mode in MODES:
        f = lambda v, m=mode: fnp.pad(v, ((1, 2), (3, 0)), mode=m)  # noqa: E731
        want = np.stack([np.pad(v, ((1, 2), (3, 0)), mode=mode) for v in x])
        same(fl.vmap(f)(x), want)
        same(fl.jit(f)(x[0]), want[0])


# --- split / array_split -------------------------------------------------------------------
def test_split_pieces_and_gradients():
    x = np.arange(12.0).reshape(3, 4)
    got, want = fnp.split(x, [1, -1], axis=1), np.split(x, [1, -1], axis=1)
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        same(g, w)
    pieces = fnp.array_split(x, 5, axis=0)  # more sections than rows: empty pieces at the end
    assert [p.shape for p in pieces] == [(1, 4)] * 3 + [(0, 4)] * 2
    g = fl.grad(lambda v: fnp.sum(fnp.split(v, 2, axis=1)[1] * 3.0))(x)
    same(g, np.concatenate([np.zeros((3, 2)), np.full((3, 2), 3.0)], axis=1))
    got = fl.vmap(lambda v: fnp.split(v, [1], axis=0)[1])(x)
    same(got, x[:, 1:])


def test_split_errors_name_the_shapes_and_the_fix():
    with pytest.raises(ValueError, match=r"fnp.split: axis 1 of an array of shape \(3, 4\).*"
                                         r"3 equal sections.*array_split"):
        fnp.split(np.ones((3, 4)), 3, axis=1)
    with pytest.raises(ValueError, match="fnp.split: a 0-d array cannot be split"):
        fnp.split(np.float32(1), 1)
    with pytest.raises(ValueError, match="fnp.array_split: the number of sections must be"):
        fnp.array_split(np.ones(3), 0)
    with pytest.raises(ValueError, match=r"fnp.split: axis 2 is out of range for an array of "
                                         r"shape \(3, 4\)"):
        fnp.split(np.ones((3, 4)), 2, axis=2)
    with pytest.raises(TypeError, match="fnp.split: indices_or_sections must be static"):
        fl.jit(lambda n: fnp.split(np.ones(4), n))(np.int64(2))


# --- tile / repeat -----------------------------------------------------------------------
def test_tile_and_repeat_gradients_sum_the_copies():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    same(fl.grad(lambda v: fnp.sum(fnp.tile(v, (2, 3))))(x), np.full((2, 2), 6.0))
    weights = np.arange(4.0).reshape(2, 2)
    g = fl.grad(lambda v: fnp.sum(fnp.repeat(v, [2, 0], axis=1) * weights))(x)
    same(g, [[1.0, 0.0], [5.0, 0.0]])
    g = fl.grad(lambda v: fnp.sum(fnp.repeat(v, 3) * np.arange(12.0)))(x)
    same(g, np.arange(12.0).reshape(4, 3).sum(1).reshape(2, 2))


def test_tile_and_repeat_edge_cases():
    same(fnp.tile(np.float32(2.0), (2, 1)), np.tile(np.float32(2.0), (2, 1)))
    same(fnp.tile(np.arange(3), 0), np.tile(np.arange(3), 0))
    same(fnp.repeat(np.arange(3), [2]), np.repeat(np.arange(3), [2]))
    same(fnp.repeat(np.zeros((0, 2)), 3, axis=0), np.repeat(np.zeros((0, 2)), 3, axis=0))
    same(fnp.repeat(np.float64(5.0), 2), np.repeat(np.float64(5.0), 2))
    with pytest.raises(ValueError, match=r"fnp.repeat: 2 repeat counts.*axis 0.*\(3,\)"):
        fnp.repeat(np.arange(3), [1, 2])
    with pytest.raises(ValueError, match="fnp.repeat: repeats must be non-negative"):
        fnp.repeat(np.arange(3), -1)
    with pytest.raises(ValueError, match="fnp.tile: reps"):
        fnp.tile(np.arange(3), (-1,))
    with pytest.raises(TypeError, match="fnp.repeat: repeats must be static"):
        fl.jit(lambda r: fnp.repeat(np.arange(3), r))(np.int64(2))


# --- joining ------------------------------------------------------------------------------
def test_stacking_functions():
    a, b = np.arange(3), np.arange(3, 6)
    same(fnp.hstack([a, b]), np.hstack([a, b]))
    same(fnp.hstack([1, 2.5]), np.hstack([np.int64(1), np.float32(2.5)]))
    same(fnp.vstack([a, b]), np.vstack([a, b]))
    same(fnp.dstack([a, b]), np.dstack([a, b]))
    same(fnp.column_stack([a, np.ones((3, 2), np.int64)]),
         np.column_stack([a, np.ones((3, 2), np.int64)]))
    same(fnp.concatenate([a.astype(np.float32), b]), np.concatenate([a.astype(np.float32), b]))
    assert isinstance(fnp.atleast_1d(1.0, a), tuple)
    assert isinstance(fnp.broadcast_arrays(a, 1.0), tuple)
    with pytest.raises(TypeError, match="fnp.vstack: expects a sequence of arrays"):
        fnp.vstack(fnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"fnp.concatenate: shapes \(2, 3\), \(2, 2\) differ"):
        fnp.concatenate([np.ones((2, 3)), np.ones((2, 2))])
    with pytest.raises(ValueError, match=r"fnp.stack: all arrays need the same shape"):
        fnp.stack([np.ones(2), np.ones(3)])


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_stack_of_arrays_matches_numpy_eagerly_and_traced(axis):
    """Eager stacking of CPU arrays takes one np.stack; traced stacking the general path:
    both give NumPy's values and result dtype (mixed dtypes promote)."""
    parts = [np.arange(6.0).reshape(2, 3).astype(np.float32) + i for i in range(3)]
    parts.append(np.ones((2, 3), np.float64))
    want = np.stack(parts, axis=axis)
    arrays = [fnp.asarray(p) for p in parts]
    same(fnp.stack(arrays, axis=axis), want)
    same(fl.jit(lambda *xs: fnp.stack(xs, axis=axis))(*arrays), want)
    with pytest.raises(ValueError, match="fnp.stack: axis 3 is out of range"):
        fnp.stack(arrays, axis=3)


# --- index arithmetic --------------------------------------------------------------------
def test_unravel_and_ravel_multi_index():
    coords = fnp.unravel_index(np.array([0, 5, 11]), (3, 4))
    assert len(coords) == 2
    for got, want in zip(coords, np.unravel_index(np.array([0, 5, 11]), (3, 4))):
        same(got, want.astype(np.int64))
    same(fnp.ravel_multi_index(coords, (3, 4)), [0, 5, 11])
    with pytest.raises(ValueError, match=r"fnp.unravel_index:.*out of bounds for shape \(3, 4\)"):
        fnp.unravel_index(np.array([12]), (3, 4))
    with pytest.raises(ValueError, match=r"fnp.ravel_multi_index: coordinate.*axis 1"):
        fnp.ravel_multi_index((np.array([0]), np.array([4])), (3, 4))
    with pytest.raises(TypeError, match="mode='clip' or 'wrap'"):
        fl.jit(lambda i, j: fnp.ravel_multi_index((i, j), (3, 4)))(np.array([0]), np.array([1]))
    traced = fl.jit(lambda i, j: fnp.ravel_multi_index((i, j), (3, 4), mode="clip"))
    same(traced(np.array([0, 7]), np.array([-1, 2])), [0, 10])


# --- axes and the eager fast paths ----------------------------------------------------------
def test_reshape_and_transpose_fast_paths_match_the_traced_path():
    x = fnp.asarray(np.arange(24.0).reshape(2, 3, 4))
    for shape in [(4, -1), 24, (2, 3, 4), (-1,), (1, 24, 1)]:
        eager, traced = fnp.reshape(x, shape), fl.jit(lambda v, s=shape: fnp.reshape(v, s))(x)
        assert type(eager) is fl.Array
        same(eager, traced)
    for axes in [None, (2, 0, 1), (-1, 0, -2), [1, 0, 2]]:
        same(fnp.transpose(x, axes), fl.jit(lambda v, a=axes: fnp.transpose(v, a))(x))
    same(x.T, np.asarray(x).T)
    same(x.reshape(4, 6), np.arange(24.0).reshape(4, 6))


@pytest.mark.parametrize("call, match", [
    (lambda: fnp.reshape(fnp.ones((2, 3)), (4, 2)),
     r"fnp.reshape: cannot reshape an array of shape \(2, 3\).*into shape \(4, 2\)"),
    (lambda: fnp.reshape(fnp.ones((2, 3)), (-1, 4)), r"fnp.reshape: .*\(2, 3\).*\(-1, 4\)"),
    (lambda: fnp.transpose(fnp.ones((2, 3)), (0, 0)), r"fnp.transpose: axes \(0, 0\)"),
    (lambda: fnp.transpose(fnp.ones((2, 3)), (0, 1, 2)),
     r"fnp.transpose: axis 2 is out of range for an array of shape \(2, 3\)"),
    (lambda: fnp.transpose(fnp.ones((2, 3, 4)), (1, 0)), r"fnp.transpose: axes \(1, 0\) do"),
    (lambda: fnp.moveaxis(fnp.ones((2, 3)), (0, 0), (0, 1)), r"fnp.moveaxis: repeated axis"),
    (lambda: fnp.swapaxes(fnp.ones((2, 3)), 0, 2),
     r"fnp.swapaxes: axis 2 is out of range for an array of shape \(2, 3\)"),
    (lambda: fnp.squeeze(fnp.ones((2, 1)), 0), r"fnp.squeeze: axis 0 of shape \(2, 1\)"),
    (lambda: fnp.expand_dims(fnp.ones(2), (0, 0)), r"fnp.expand_dims: repeated axis"),
    (lambda: fnp.broadcast_to(fnp.ones((2, 3)), (3, 3)),
     r"fnp.broadcast_to: cannot broadcast shape \(2, 3\) to \(3, 3\)"),
    (lambda: fnp.pad(fnp.ones((2, 3)), ((1, 1), (1, 1), (1, 1))),
     r"fnp.pad: pad_width of shape \(3, 2\) does not fit an array with 2 axes"),
    (lambda: fnp.pad(fnp.ones(2), -1), r"fnp.pad: pad_width -1 must hold non-negative"),
    (lambda: fnp.pad(fnp.ones((0, 2)), 1, mode="reflect"),
     r"fnp.pad: cannot extend the empty axis 0 of an array of shape \(0, 2\)"),
])
def test_shape_errors_name_the_function_and_the_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pad_unsupported_mode_names_the_supported_ones():
    with pytest.raises(NotImplementedError, match="fnp.pad: mode 'mean'.*'reflect'"):
        fnp.pad(fnp.ones(2), 1, mode="mean")


def test_size_one_and_empty_axes():
    e = np.zeros((0, 1, 3))
    same(fnp.squeeze(e), np.squeeze(e))
    same(fnp.moveaxis(e, 0, -1), np.moveaxis(e, 0, -1))
    same(fnp.concatenate([e, e], axis=0), np.concatenate([e, e], axis=0))
    same(fnp.stack([e, e], axis=-1), np.stack([e, e], axis=-1))
    same(fnp.tile(e, 2), np.tile(e, 2))
    same(fnp.pad(e, 1), np.pad(e, 1))
    same(fnp.broadcast_to(np.ones((1, 3)), (0, 3)), np.broadcast_to(np.ones((1, 3)), (0, 3)))
