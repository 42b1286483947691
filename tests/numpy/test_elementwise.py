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
