"""L-BFGS: Rosenbrock (2-D, 10-D) and a convex quadratic, eagerly and under jit, compared
loosely with SciPy's L-BFGS-B; the transform form on a pytree."""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import optim


def rosenbrock(x):
    return fnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def start(n):
    return np.array([-1.2, 1.0] * (n // 2))


def scipy_iterations(n):
    so = pytest.importorskip("scipy.optimize")
    result = so.minimize(so.rosen, start(n), jac=so.rosen_der, method="L-BFGS-B")
    assert result.success
    return result.nit


@pytest.mark.parametrize("n", [2, 10])
def test_rosenbrock(x64, n):
    x, info = optim.minimize(rosenbrock, fnp.asarray(start(n)), gtol=1e-8)
    assert bool(info.converged)
    np.testing.assert_allclose(np.asarray(x), np.ones(n), atol=1e-5)
    assert float(info.value) < 1e-10 and x.dtype == np.float64
    assert int(info.evaluations) >= int(info.iterations) > 10
    # Same algorithm family, different line search: iteration counts are close.
    assert int(info.iterations) <= 2 * scipy_iterations(n) + 10


def test_convex_quadratic(x64):
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(20, 20)))[0]
    a = q @ np.diag(np.logspace(0, 2, 20)) @ q.T          # SPD, condition number 100
    b = rng.normal(size=20)
    x, info = optim.minimize(lambda x: 0.5 * x @ (a @ x) - b @ x, fnp.zeros(20), gtol=1e-7,
                             ftol=0.0)                 # stop on the gradient only
    assert bool(info.converged) and float(info.grad_norm) <= 1e-7
    # |x - x*| <= |g| / smallest eigenvalue (1) per component, up to sqrt(n)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b), atol=1e-6)
    assert int(info.iterations) <= 100


def test_minimize_under_jit_matches_eager_and_takes_a_pytree(x64):
    def f(p):
        return rosenbrock(p["x"]) + fnp.sum((p["y"] - 3.0) ** 2)

    params = {"x": fnp.asarray(start(4)), "y": fnp.zeros((2, 2))}
    eager_x, eager_info = optim.minimize(f, params)
    jitted = fl.jit(lambda p: optim.minimize(f, p))
    jit_x, jit_info = jitted(params)
    assert int(jit_info.iterations) == int(eager_info.iterations)
    np.testing.assert_allclose(np.asarray(jit_x["x"]), np.asarray(eager_x["x"]), rtol=1e-9)
    np.testing.assert_allclose(np.asarray(jit_x["y"]), 3.0, rtol=1e-6)
    assert bool(jit_info.converged)
    jitted({"x": fnp.asarray(start(4)) * 0.5, "y": fnp.ones((2, 2))})
    assert jitted.trace_count == 1


def test_float32_stops_at_float32_resolution():
    x, info = optim.minimize(rosenbrock, fnp.asarray(start(2).astype(np.float32)))
    assert x.dtype == np.float32 and bool(info.converged)
    np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], atol=1e-2)


def test_lbfgs_transform_loop_on_a_pytree(x64):
    def f(p):
        return fnp.sum((p["a"] - 1.0) ** 2) + 5 * fnp.sum((p["b"] + 2.0) ** 2) + \
            fnp.sum(p["a"] ** 2 * p["b"][0] ** 2)

    params = {"a": fnp.zeros(3), "b": fnp.ones(1)}
    opt = optim.lbfgs(memory_size=5)
    state = opt.init(params)
    step = fl.jit(lambda p, s, v, g: opt.update(g, s, p, value=v, value_fn=f))
    value, grads = fl.value_and_grad(f)(params)
    for _ in range(30):
        updates, state = step(params, state, value, grads)
        params = optim.apply_updates(params, updates)
        value, grads = state.value, state.grad       # no second evaluation
        np.testing.assert_allclose(float(value), float(f(params)), rtol=1e-12)
    assert step.trace_count == 1
    np.testing.assert_allclose(np.asarray(fl.grad(f)(params)["a"]), 0.0, atol=1e-8)
    assert int(state.count) == 30


def test_lbfgs_update_needs_the_objective():
    opt = optim.lbfgs()
    params = fnp.zeros(2)
    with pytest.raises(ValueError, match=r"lbfgs\.update: the line search evaluates the "
                                         r"objective.*value_fn=f"):
        opt.update(fnp.ones(2), opt.init(params), params)
    with pytest.raises(ValueError, match=r"minimize: method must be 'lbfgs'"):
        optim.minimize(rosenbrock, params, method="bfgs")
