"""Plain NumPy calls on fl arrays and tracers run (and trace) the fnp equivalents."""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp


def test_ufuncs_functions_and_operators_return_arrays():
    x = fnp.asarray([0.5, 1.0])
    for out in (np.sin(x), np.sum(x), np.add(x, 1.0), np.ones(2) + x, x + np.ones(2),
                np.maximum.reduce(x), np.mean(x), np.concatenate([x, x]), np.ones(2) @ x):
        assert isinstance(out, fl.Array), type(out)
    np.testing.assert_allclose(np.sin(x), np.sin([0.5, 1.0]), rtol=1e-6)
    np.testing.assert_allclose(np.add.accumulate(x), [0.5, 1.5])


def test_numpy_code_is_traced_by_grad_and_vmap():
    def f(x):  # unmodified NumPy code
        return np.sum(np.tanh(x) * np.exp(-x))
    x = fnp.asarray(np.array([0.1, 0.7]))
    g = fl.grad(f)(x)
    t, e = np.tanh(np.asarray(x)), np.exp(-np.asarray(x))
    np.testing.assert_allclose(g, (1 - t**2) * e - t * e, rtol=1e-12)
    out = fl.vmap(lambda v: np.sum(v * v))(fnp.ones((3, 2)))
    np.testing.assert_allclose(out, [2.0, 2.0, 2.0])


def test_function_without_equivalent_raises_naming_it():
    with pytest.raises(TypeError, match=r"numpy\.fft\.fft|numpy\..*fft"):
        np.fft.fft(fnp.ones(4))


def test_out_argument_is_rejected():
    with pytest.raises(TypeError, match="immutable"):
        np.sin(fnp.ones(2), out=np.empty(2))
    with pytest.raises(TypeError, match="immutable"):
        np.add.at(fnp.ones(2), [0], 1.0)


def test_np_asarray_of_tracer_is_never_a_silent_constant():
    with pytest.raises(fl.ConcretizationError, match="vmap"):
        fl.vmap(lambda v: np.asarray(v))(fnp.ones((2, 2)))
