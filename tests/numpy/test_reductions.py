"""Reductions and scans: axes/keepdims/dtypes drawn by hypothesis, exact derivatives at
zeros (prod, cumprod), numerically stable logsumexp, edge cases and error messages.

The property tests over every spec (``tests/specs/reductions.py``) cover impl vs NumPy,
derivatives, vmap and jit; this file adds what a spec cannot express.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite.core import bind
from functorch_lite.primitives import reductions as red


def f64(x):
    return np.asarray(x, dtype=np.float64)


# --- axes, keepdims and dtypes drawn directly ---------------------------------------------
@st.composite
def array_and_axis(draw, dtypes=("float32", "float64", "int32", "int64", "bool"),
                   min_side=0, single=False):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=min_side, max_side=3))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    elements = (st.booleans() if dtype.kind == "b" else st.integers(-4, 4) if dtype.kind == "i"
                else st.floats(-4, 4, width=32))
    x = draw(hnp.arrays(dtype, shape, elements=elements))
    nd = len(shape)
    if single or nd == 0:
        axis = draw(st.none() | st.integers(-nd, nd - 1)) if nd else None
    else:
        axis = draw(st.none() | st.integers(-nd, nd - 1) | st.lists(
            st.integers(0, nd - 1), unique=True).map(
                lambda axes: tuple(a - nd if a % 2 else a for a in axes)))
    return x, axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "prod", "all", "any", "count_nonzero"])
@given(data=array_and_axis())
def test_total_reductions_match_numpy(name, data):
    x, axis, keepdims = data
    got = getattr(fnp, name)(x, axis=axis, keepdims=keepdims)
    want = np.asarray(getattr(np, name)(x, axis=axis, keepdims=keepdims))
    if name == "count_nonzero":
        want = want.astype(np.int64)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)


@pytest.mark.parametrize("name", ["max", "min", "ptp"])
@given(data=array_and_axis(min_side=1))
def test_extrema_match_numpy(name, data):
    x, axis, keepdims = data
    if name == "ptp" and x.dtype == bool:
        return  # NumPy refuses to subtract booleans
    got = getattr(fnp, name)(x, axis=axis, keepdims=keepdims)
    want = np.asarray(getattr(np, name)(x, axis=axis, keepdims=keepdims))
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(data=array_and_axis(min_side=1, single=True))
def test_argmax_argmin_match_numpy_first_occurrence(name, data):
    x, axis, keepdims = data
    got = getattr(fnp, name)(x, axis=axis, keepdims=keepdims)
    want = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(np.asarray(got), want)
    assert got.shape == np.shape(want)


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@given(data=array_and_axis(single=True))
def test_scans_match_numpy(name, data):
    x, axis, _ = data
    if x.ndim == 0 and axis is not None:
        return
    got = getattr(fnp, name)(x, axis=axis)
    want = getattr(np, name)(x, axis=axis)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)


@given(data=array_and_axis(dtypes=("float32", "float64", "int64"), min_side=2),
       ddof=st.integers(0, 1))
def test_mean_var_std_match_numpy(data, ddof):
    x, axis, keepdims = data
    np.testing.assert_allclose(fnp.mean(x, axis, keepdims=keepdims),
                               np.mean(x, axis, keepdims=keepdims), rtol=1e-5, atol=1e-6)
    if x.ndim == 0 or axis == ():
        return  # a group of one element: ddof=1 divides by zero
    for name in ("var", "std"):
        got = getattr(fnp, name)(x, axis, ddof=ddof, keepdims=keepdims)
        want = getattr(np, name)(x, axis, ddof=ddof, keepdims=keepdims)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)


@given(data=array_and_axis(dtypes=("float64",), min_side=1))
def test_prod_derivatives_with_zeros_for_any_axes(data):
    x, axis, keepdims = data
    x = np.where(np.abs(x) < 1.5, 0.0, x / 4)  # many exact zeros, moderate products
    fl.debug.check_grads(lambda v: fnp.prod(v, axis=axis, keepdims=keepdims), (x,), order=2)


# --- exact derivatives at zeros --------------------------------------------------------------
def test_prod_gradient_is_the_product_of_the_others_even_at_zeros():
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 4.0]])
    g = fl.grad(lambda v: fnp.sum(fnp.prod(v, axis=1)))(x)
    np.testing.assert_array_equal(np.asarray(g), [[6, 0, 0], [0, 0, 0], [8, 4, 2]])
    hess = fl.hessian(fnp.prod)(np.array([0.0, 2.0, 3.0]))
    np.testing.assert_array_equal(np.asarray(hess), [[0, 3, 2], [3, 0, 0], [2, 0, 0]])


def test_prod_forward_mode_over_several_axes():
    x = np.arange(24.0).reshape(2, 3, 4) / 10  # x[0, 0, 0] == 0
    t = np.ones_like(x)
    _, t_out = fl.jvp(lambda v: fnp.prod(v, axis=(0, 2)), (x,), (t,))
    want = [sum(np.prod(np.delete(x[:, j, :].ravel(), k)) for k in range(8)) for j in range(3)]
    np.testing.assert_allclose(np.asarray(t_out), want, rtol=1e-12)


def test_cumprod_gradient_is_exact_with_zeros_in_both_directions():
    x = np.array([2.0, 0.0, 3.0, 0.5])
    jac = np.asarray(fl.jacrev(fnp.cumprod)(x))
    want = np.zeros((4, 4))
    for i in range(4):
        for k in range(i + 1):
            want[i, k] = np.prod(np.delete(x[:i + 1], k))
    np.testing.assert_array_equal(jac, want)
    rev = np.asarray(fl.jacfwd(lambda v: bind(red.cumprod_p, v, axis=0, reverse=True))(x))
    want_rev = np.zeros((4, 4))
    for i in range(4):
        for k in range(i, 4):
            want_rev[i, k] = np.prod(np.delete(x[i:], k - i))
    np.testing.assert_array_equal(rev, want_rev)
    fl.debug.check_grads(lambda v: fnp.cumprod(v, axis=1), (np.array([[0.0, 1.5, 0.0],
                                                                        [2.0, -1.0, 0.5]]),))


def test_cumsum_transpose_is_the_reversed_scan():
    ct = np.array([1.0, 2.0, 3.0])
    _, pullback = fl.vjp(lambda v: fnp.cumsum(v), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(pullback(ct)[0]), [6.0, 5.0, 3.0])


# --- logsumexp -----------------------------------------------------------------------------
def _softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def test_logsumexp_is_stable_for_large_values_and_its_gradient_is_softmax():
    x = np.array([[1e4, 1e4 + 1.0, -1e4], [-1e4, -1e4, -1e4 + 2.0]])
    out = fnp.logsumexp(x, axis=1)
    want = np.max(x, axis=1) + np.log(np.sum(np.exp(x - np.max(x, 1, keepdims=True)), 1))
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-12)
    g = fl.grad(lambda v: fnp.sum(fnp.logsumexp(v, axis=1)))(x)
    np.testing.assert_allclose(np.asarray(g), _softmax(x, 1), rtol=1e-12)


def test_logsumexp_handles_minus_infinity():
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]])
    with np.errstate(divide="ignore"):  # log(0) for the all -inf row, as in NumPy
        out = np.asarray(fnp.logsumexp(x, axis=1))
    assert out[0] == pytest.approx(np.log(1 + np.e)) and out[1] == -np.inf
    g = np.asarray(fl.grad(lambda v: fnp.logsumexp(v[0]))(x))
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[0], _softmax(np.array([0.0, -np.inf, 1.0]), 0))
    assert fl.grad(lambda v: fnp.logsumexp(v))(x).shape == x.shape


def test_logsumexp_options():
    x = np.arange(6.0).reshape(2, 3)
    assert fnp.logsumexp(x, axis=-1, keepdims=True).shape == (2, 1)
    b = np.array([1.0, 0.0, 2.0])
    np.testing.assert_allclose(np.asarray(fnp.logsumexp(x, axis=1, b=b)),
                               np.log(np.sum(b * np.exp(x), axis=1)))
    assert fnp.logsumexp(np.array([1, 2], dtype=np.int32)).dtype == np.float32
    empty = fnp.logsumexp(np.zeros((2, 0)), axis=1)
    assert empty.shape == (2,) and np.all(np.asarray(empty) == -np.inf)


# --- max / min -----------------------------------------------------------------------------
def test_max_gradient_is_shared_among_ties():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    g = fl.grad(lambda v: fnp.sum(fnp.max(v, axis=1)))(x)
    np.testing.assert_array_equal(np.asarray(g), [[0, 0.5, 0.5], [1, 0, 0]])


def test_max_min_initial():
    np.testing.assert_array_equal(np.asarray(fnp.max(np.zeros((0, 2)), 0, initial=-1.0)),
                                  [-1.0, -1.0])
    assert fnp.max(np.zeros((0, 2)), 0, keepdims=True, initial=1.0).shape == (1, 2)
    np.testing.assert_array_equal(np.asarray(fnp.min(np.array([3, 1, 5]), initial=2)), 1)
    np.testing.assert_array_equal(np.asarray(fnp.max(np.array([3, 1, 5]), initial=9)), 9)


# --- composites --------------------------------------------------------------------------
def test_average_weights_and_errors():
    x = np.arange(6.0).reshape(2, 3)
    w = np.array([1.0, 2.0, 3.0])
    avg, total = fnp.average(x, axis=-1, weights=w, returned=True)
    np.testing.assert_allclose(np.asarray(avg), np.average(x, axis=-1, weights=w))
    np.testing.assert_array_equal(np.asarray(total), [6.0, 6.0])
    g = fl.grad(lambda v: fnp.average(x[0], weights=v))(w)
    np.testing.assert_allclose(np.asarray(g), (x[0] - np.average(x[0], weights=w)) / 6)
    with pytest.raises(ValueError, match=r"fnp.average.*axis 1.*\(2, 3\).*\(2,\)"):
        fnp.average(x, axis=1, weights=np.ones(2))
    with pytest.raises(ValueError, match="fnp.average"):
        fnp.average(x, weights=np.ones(3))
    assert fnp.average(np.array([1, 2])).dtype == np.float64  # int64 input: float64 result


def test_nan_reductions_ignore_nans_and_give_them_no_gradient():
    x = np.array([1.0, np.nan, 3.0])
    assert float(fnp.nansum(x)) == 4.0 and float(fnp.nanmean(x)) == 2.0
    np.testing.assert_array_equal(np.asarray(fl.grad(fnp.nansum)(x)), [1, 0, 1])
    np.testing.assert_array_equal(np.asarray(fl.grad(fnp.nanmean)(x)), [0.5, 0, 0.5])
    with np.errstate(invalid="ignore"):  # 0 / 0, as in NumPy
        assert np.isnan(float(fnp.nanmean(np.array([np.nan, np.nan]))))


def test_mean_var_std_dtypes_and_ddof():
    assert fnp.mean(np.array([1, 2], dtype=np.int32)).dtype == np.float32
    assert fnp.mean(np.array([1, 2])).dtype == np.float64
    assert fnp.mean(np.ones(3, np.float32), dtype=np.float64).dtype == np.float64
    x = np.array([1.0, 2.0, 4.0])
    assert float(fnp.var(x, ddof=1)) == pytest.approx(np.var(x, ddof=1))
    assert fnp.std(np.ones((2, 3)), axis=0, keepdims=True).shape == (1, 3)


# --- empty arrays, 0-d arrays, eager fast paths ------------------------------------------
def test_empty_reductions_have_numpys_identities():
    e = np.zeros((0, 3))
    np.testing.assert_array_equal(np.asarray(fnp.sum(e, axis=0)), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(fnp.prod(e, axis=0)), np.ones(3))
    assert bool(fnp.all(e)) and not bool(fnp.any(e))
    assert fnp.cumsum(e, axis=0).shape == (0, 3) and fnp.cumprod(e).shape == (0,)
    assert fnp.sum(e, axis=1).shape == (0,) and fnp.max(e, axis=1).shape == (0,)


def test_eager_fast_paths_agree_with_the_traced_path():
    for x in (np.arange(6, dtype=np.int32).reshape(2, 3), np.ones((2, 3), bool),
              np.float32(2.5), np.arange(6.0).reshape(2, 3)):
        for fn in (fnp.sum, fnp.mean, fnp.max):
            if fn is fnp.mean and x.dtype.kind != "f":
                continue
            for axis in (None, -1) if np.ndim(x) else (None,):
                eager = fn(fnp.asarray(x), axis=axis)
                traced = fl.jit(lambda v, f=fn, a=axis: f(v, axis=a))(x)
                assert type(eager) is fl.Array
                assert eager.shape == traced.shape and eager.dtype == traced.dtype
                np.testing.assert_array_equal(np.asarray(eager), np.asarray(traced))


# --- vmap of the new primitives (batch axis not in front) ----------------------------------
@pytest.mark.parametrize("fn", [
    lambda v: fnp.prod(v, axis=0), lambda v: fnp.cumsum(v, axis=-1),
    lambda v: fnp.cumprod(v, axis=0), lambda v: fnp.all(v > 0, axis=1),
    lambda v: fnp.any(v > 1), lambda v: fnp.logsumexp(v, axis=0),
])
def test_vmap_over_a_middle_axis_matches_a_loop(fn):
    x = np.arange(24.0).reshape(2, 4, 3) / 10 - 0.5
    got = fl.vmap(fn, in_axes=1)(x)
    want = np.stack([np.asarray(fn(x[:, i])) for i in range(4)])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


def test_vmap_of_prod_and_cumprod_gradients():
    x = np.array([[0.0, 2.0, 3.0], [1.0, 0.0, 0.0], [1.0, 2.0, 4.0]])
    got = fl.vmap(fl.grad(fnp.prod))(x)
    np.testing.assert_array_equal(np.asarray(got), [[6, 0, 0], [0, 0, 0], [8, 4, 2]])
    got = fl.vmap(fl.grad(lambda v: fnp.sum(fnp.cumprod(v))), in_axes=1)(x)
    want = np.stack([np.asarray(fl.grad(lambda v: fnp.sum(fnp.cumprod(v)))(x[:, i]))
                     for i in range(3)])
    np.testing.assert_array_equal(np.asarray(got), want)


# --- errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda: fnp.sum(np.ones((2, 3)), axis=2), r"fnp.sum: axis 2 is out of range.*2-d"),
    (lambda: fnp.mean(np.ones((2, 3)), axis=-3), r"fnp.mean: axis -3"),
    (lambda: fnp.prod(np.ones((2, 3)), axis=(0, -2)), r"fnp.prod: repeated axis"),
    (lambda: fnp.max(np.zeros((0, 3)), axis=0), r"fnp.max: zero-size.*\(0, 3\).*initial="),
    (lambda: fnp.cumsum(np.ones(3), axis=1), r"fnp.cumsum: axis 1 is out of range"),
    (lambda: fnp.logsumexp(np.ones(3), axis=(0, 0)), r"fnp.logsumexp: repeated axis"),
])
def test_axis_errors_name_the_function_and_the_shape(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: fnp.argmax(np.ones((2, 3)), axis=(0, 1)), r"fnp.argmax: axis must be None or an"),
    (lambda: fnp.cumprod(np.ones(3), axis=(0,)), r"fnp.cumprod: axis must be None or an int"),
    (lambda: fnp.sum(np.ones(3), axis=1.0), r"fnp.sum: axis must be None, an int or a tuple"),
])
def test_axis_type_errors(call, match):
    with pytest.raises(TypeError, match=match):
        call()


# --- quantile / percentile / median -------------------------------------------------------
def test_quantile_gradient_flows_to_the_neighbouring_order_statistics():
    x = np.array([[3.0, 1.0, 2.0, 7.0], [0.0, 5.0, 4.0, 6.0]])
    g = fl.grad(lambda v: fnp.sum(fnp.quantile(v, 0.4, axis=1)))(x)
    np.testing.assert_allclose(np.asarray(g), [[0.2, 0, 0.8, 0], [0, 0.2, 0.8, 0]], atol=1e-12)
    g = fl.grad(lambda v: fnp.sum(fnp.median(v, axis=1)))(x)
    np.testing.assert_allclose(np.asarray(g), [[0.5, 0, 0.5, 0], [0, 0.5, 0.5, 0]])
    fl.debug.check_grads(lambda v: fnp.percentile(v, np.array([10.0, 50.0, 80.0]), axis=0),
                         (x,), order=2)


def test_quantile_dtypes():
    x32 = np.array([4.0, 1.0, 3.0, 2.0], np.float32)
    assert fnp.quantile(x32, 0.5).dtype == np.float32               # a Python float is weak
    assert fnp.quantile(x32, np.array([0.5])).dtype == np.float64   # as NumPy
    assert fnp.quantile(x32, [0.5]).dtype == np.float32             # lists: default float
    assert fnp.quantile(np.arange(5), 0.5, method="lower").dtype == np.int64
    assert fnp.median(np.arange(4)).dtype == np.float64
    assert fnp.median(x32, keepdims=True).shape == (1,)


def test_quantile_errors():
    with pytest.raises(ValueError, match=r"fnp.quantile: q must lie in \[0, 1\]"):
        fnp.quantile(np.ones(3), 1.5)
    with pytest.raises(ValueError, match=r"fnp.percentile: q must lie in \[0, 100\]"):
        fnp.percentile(np.ones(3), [50, 101])
    with pytest.raises(ValueError, match="fnp.quantile: method 'weibull' is not supported"):
        fnp.quantile(np.ones(3), 0.5, method="weibull")
    with pytest.raises(ValueError, match=r"fnp.median: .*shape \(0, 2\) is empty"):
        fnp.median(np.ones((0, 2)), axis=0)
    with pytest.raises(TypeError, match="fnp.quantile: q must be static"):
        fl.jit(lambda q: fnp.quantile(np.ones(3), q))(0.5)
