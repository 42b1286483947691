"""Elementwise edge cases the spec-driven property tests do not reach: derivatives of
maximum and minimum at ties (the property tests draw points away from them)."""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_relu_derivative_is_one_half_at_zero(mode):
    x = np.array([-1.0, 0.0, 2.0])
    relu = lambda v: fnp.maximum(v, 0.0)
    if mode == "rev":
        d = fl.grad(lambda v: fnp.sum(relu(v)))(x)
    else:
        d = fl.jvp(relu, (x,), (np.ones(3),))[1]
    np.testing.assert_array_equal(np.asarray(d), [0.0, 0.5, 1.0])


@pytest.mark.parametrize("fn, dx, dy", [
    (fnp.maximum, [1.0, 0.5, 0.0], [0.0, 0.5, 1.0]),
    (fnp.minimum, [0.0, 0.5, 1.0], [1.0, 0.5, 0.0]),
])
def test_extremum_gradients_split_ties_between_operands(fn, dx, dy):
    x, y = np.array([3.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0])
    gx, gy = fl.grad(lambda a, b: fnp.sum(fn(a, b)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(np.asarray(gx), dx)
    np.testing.assert_array_equal(np.asarray(gy), dy)
    # the same through jit, and per example under vmap
    gj = fl.jit(fl.grad(lambda a, b: fnp.sum(fn(a, b))))(x, y)
    np.testing.assert_array_equal(np.asarray(gj), dx)
    gv = fl.vmap(fl.grad(lambda a, b: fn(a, b)))(x, y)
    np.testing.assert_array_equal(np.asarray(gv), dx)


def test_extremum_gradient_of_a_broadcast_operand_is_summed():
    x = np.array([[1.0, -1.0], [0.0, 2.0]])
    g = fl.grad(lambda t: fnp.sum(fnp.maximum(x, t)))(np.float64(0.0))
    # t wins where x < 0 (one entry) and ties at x == 0 (one entry: half)
    assert float(g) == 1.5


def test_relu_second_derivative_is_zero():
    d2 = fl.grad(fl.grad(lambda v: fnp.maximum(v, 0.0) * 3.0))(np.float64(2.0))
    assert float(d2) == 0.0


def test_square_written_as_a_product_differentiates_to_twice_x():
    # x * x takes the shared-operand path of the multiply rule: one cotangent, used twice.
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(np.asarray(fl.grad(lambda v: fnp.sum(v * v))(x)), 2 * x)
    h = fl.hessian(lambda v: fnp.sum(v * v * v))(x)
    np.testing.assert_allclose(np.asarray(h), np.diag(6 * x))
    b = np.ones((2, 3))  # broadcast against itself through a reshape-free product
    np.testing.assert_array_equal(
        np.asarray(fl.grad(lambda v: fnp.sum(v * v * b))(x)), 4 * x)


# maximum/minimum against a Python zero pass NumPy an array of zeros instead (NumPy's
# array-scalar loop for them is not vectorized): eagerly, under grad and in jitted code.
_ZERO_CASES = [(fnp.maximum, np.maximum, 0.0), (fnp.minimum, np.minimum, 0),
               (fnp.maximum, np.maximum, -0.0), (fnp.minimum, np.minimum, 0.5)]


def _edge_values(shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    x.flat[:6] = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45]
    return x


@pytest.mark.parametrize("fn, np_fn, zero", _ZERO_CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extremum_against_a_zero_scalar_matches_numpy(fn, np_fn, zero, dtype):
    x = _edge_values((64, 128), dtype)   # above the size where zeros are used
    want = np_fn(x, zero)
    for got in (fn(fnp.asarray(x), zero), fn(zero, fnp.asarray(x)),
                fl.jit(lambda v: fn(v, zero))(fnp.asarray(x)),
                fl.jit(lambda v: fn(zero, v))(fnp.asarray(x))):
        got = np.asarray(got)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)  # NB: -0.0 == 0.0 (NumPy's own
        # array-array and array-scalar loops disagree on the sign of max(-0.0, 0.0))


def test_relu_through_zeros_keeps_its_gradient_and_the_zeros_constant():
    from functorch_lite.primitives import elementwise

    x = _edge_values((64, 128), "float32")[:, ::-1].copy()
    x[np.isnan(x) | np.isinf(x)] = 1.0
    loss = lambda v: fnp.sum(fnp.maximum(v, 0.0) * 2.0)
    want = 2.0 * ((x > 0) + 0.5 * (x == 0))
    step = fl.jit(lambda v: v - fl.grad(loss)(v), donate_argnums=0)
    for g in (fl.grad(loss)(fnp.asarray(x)), fl.grad(loss)(fnp.asarray(x)),
              fl.jit(fl.grad(loss))(fnp.asarray(x))):
        np.testing.assert_array_equal(np.asarray(g), want)
    v, expected = fnp.asarray(x.copy()), x.copy()
    for _ in range(3):
        v = step(v)  # in-place updates around the zeros constant
        expected = expected - 2.0 * ((expected > 0) + 0.5 * (expected == 0))
    np.testing.assert_allclose(np.asarray(v), expected, rtol=1e-6)
    assert all(not z.any() and not z.flags.writeable
               for z in elementwise._zeros_cache.values())


def test_integer_and_small_arrays_meet_the_scalar_itself():
    xi = np.arange(-3000, 3000)
    np.testing.assert_array_equal(np.asarray(fnp.maximum(fnp.asarray(xi), 0.0)),
                                  np.maximum(xi, 0.0))
    assert fnp.maximum(fnp.asarray(xi), 0.0).dtype == np.maximum(xi, 0.0).dtype
    small = np.array([-1.0, 0.0, 1.0], np.float32)
    np.testing.assert_array_equal(np.asarray(fnp.maximum(fnp.asarray(small), 0)),
                                  np.maximum(small, 0))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.bool_])
def test_zero_dimensional_operands_give_zero_dimensional_arrays(dtype):
    """NumPy returns scalars for 0-d operands; the fast paths (eager and taped) wrap them as
    0-d arrays of NumPy's result dtype, as the general path does."""
    a, b = np.asarray(3, dtype), np.asarray(2, dtype)
    x, y = fnp.asarray(a), fnp.asarray(b)
    for got, want in [(x + y, a + b), (x * 2, a * 2), (2.5 - x, 2.5 - a),
                      (fnp.negative(x) if dtype != np.bool_ else ~x, -a if dtype != np.bool_
                       else ~a), (fnp.sin(x), np.sin(a))]:
        assert type(got) is fl.Array and type(got._buf) is np.ndarray
        assert got.shape == () and got.dtype == np.asarray(want).dtype
        np.testing.assert_array_equal(got, want)
    if np.dtype(dtype).kind == "f":
        value, g = fl.value_and_grad(lambda v: fnp.sin(v * v) + v)(x)
        assert type(value._buf) is np.ndarray and value.dtype == dtype
        np.testing.assert_allclose(g, 2 * a * np.cos(a * a) + 1, rtol=1e-3)
