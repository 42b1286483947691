"""Eager reverse mode runs a tape seen before as a compiled backward program
(functorch_lite/_compiled_backward.py). Each test compares against the rules run one by
one (``autodiff._COMPILE_BACKWARD = False``), on the first call (which records the
structure), the second (which compiles) and the third (which reuses the program)."""

import gc
import weakref

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import _compiled_backward as cb
from functorch_lite import autodiff
from functorch_lite.core import Primitive, ShapedArray, bind, registry


@pytest.fixture(autouse=True)
def fresh_cache():
    cb.clear_cache()
    yield
    cb.clear_cache()


def _interpreted(fn, *args):
    autodiff._COMPILE_BACKWARD = False
    try:
        return fn(*args)
    finally:
        autodiff._COMPILE_BACKWARD = True


def _programs():
    return [p for p in cb._cache.values() if callable(p)]


def _assert_tree_equal(got, want, rtol=1e-6):
    got_leaves, got_tree = fl.tree.flatten(got)
    want_leaves, want_tree = fl.tree.flatten(want)
    assert got_tree == want_tree
    for g, w in zip(got_leaves, want_leaves, strict=True):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=1e-7)


def _mlp_params(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return {"w1": fnp.asarray(rng.standard_normal((5, 8)).astype(dtype)),
            "b1": fnp.zeros(8, dtype),
            "w2": fnp.asarray(rng.standard_normal((8, 3)).astype(dtype))}


def _loss(params, x, labels):
    h = fl.nn.relu(x @ params["w1"] + params["b1"])
    z = h @ params["w2"]
    logp = z - fl.nn.logsumexp(z, axis=1, keepdims=True)
    return -fnp.mean(fnp.sum(logp * labels, axis=1)), fnp.max(z)


def _data(n=4, seed=1):
    rng = np.random.default_rng(seed)
    return (fnp.asarray(rng.standard_normal((n, 5)).astype(np.float32)),
            fnp.asarray(np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]))


def test_repeated_grad_of_a_pytree_with_aux_and_two_argnums():
    params, (x, labels) = _mlp_params(), _data()
    g = fl.grad(_loss, argnums=(0, 1), has_aux=True)
    want = _interpreted(g, params, x, labels)
    for call in range(3):
        _assert_tree_equal(g(params, x, labels), want)
        assert len(_programs()) == (1 if call >= 1 else 0)


def test_value_and_grad_in_float64_and_a_training_loop():
    params, (x, labels) = _mlp_params(dtype=np.float64), _data()
    x = x.astype(fnp.float64)
    vg = fl.value_and_grad(lambda p: _loss(p, x, labels)[0])
    p_compiled = p_interpreted = params
    for _ in range(5):
        v1, g1 = vg(p_compiled)
        v2, g2 = _interpreted(vg, p_interpreted)
        np.testing.assert_allclose(float(v1), float(v2), rtol=1e-12)
        _assert_tree_equal(g1, g2, rtol=1e-10)
        p_compiled = fl.tree.map(lambda p, d: p - 0.1 * d, p_compiled, g1)
        p_interpreted = fl.tree.map(lambda p, d: p - 0.1 * d, p_interpreted, g2)
    assert len(_programs()) == 1  # one structure, compiled once, reused


def test_a_new_shape_is_a_new_structure():
    params = _mlp_params()
    g = fl.grad(lambda p, x, y: _loss(p, x, y)[0])
    for n in (4, 7, 4, 7, 4, 7):
        x, labels = _data(n)
        _assert_tree_equal(g(params, x, labels), _interpreted(g, params, x, labels))
    assert len(_programs()) == 2


def test_python_scalars_are_inputs_not_constants():
    x = fnp.asarray(np.linspace(-1.0, 1.0, 6))
    g = fl.grad(lambda v, c: fnp.sum(fnp.sin(v * c) / c))
    for c in (0.5, 2.0, -3.0, 0.25):
        np.testing.assert_allclose(np.asarray(g(x, c)), np.cos(np.asarray(x) * c),
                                   rtol=1e-6)
    assert len(_programs()) == 1  # the scalar changed, the program did not


def test_vjp_pullback_called_many_times():
    x = fnp.asarray(np.linspace(0.1, 2.0, 5))
    out, pull = fl.vjp(lambda v: fnp.log(v) * v, x)
    for k in range(4):
        ct = fnp.asarray(np.full(5, k + 1.0))
        (got,) = pull(ct)
        np.testing.assert_allclose(np.asarray(got), (k + 1.0) * (np.log(np.asarray(x)) + 1),
                                   rtol=1e-6)


def test_custom_rules_are_never_compiled():
    @fl.custom_vjp
    def clip_gradient(v):
        return v

    clip_gradient.defvjp(lambda v: (v, None), lambda res, g: (fnp.clip(g, -1.0, 1.0),))
    g = fl.grad(lambda v: fnp.sum(clip_gradient(v) * 3.0))
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(g(fnp.ones(4))), np.ones(4))
    assert not cb._cache  # not even recorded


def _concrete_rule_primitive():
    """A primitive whose derivative rule branches on a value: it cannot be traced."""
    def vjp(ct, out, primals, needs):
        scale = 2.0 if float(fnp.sum(ct)) > 0 else -2.0
        return (ct * scale,)

    prim = Primitive("test_value_dependent_rule", lambda xp, x: x * 2.0,
                     lambda x: ShapedArray(x.shape, x.dtype), vjp=vjp)
    del registry[prim.name]  # a test's primitive: not one the spec coverage test must see
    return prim


def test_a_rule_that_reads_values_falls_back_to_interpreting():
    prim = _concrete_rule_primitive()
    g = fl.grad(lambda v: fnp.sum(bind(prim, v)))
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(g(fnp.ones(3))), [2.0, 2.0, 2.0])
    assert cb._UNTRACEABLE in cb._cache.values()


def _control_flow_loss():
    """A loss closing over a big array through cond and scan, and a weak reference to
    that array's buffer."""
    big = fnp.asarray(np.ones(1000, np.float32))

    def f(v):
        v = fl.cond(v[0] > 0, lambda u: u * big[:3], lambda u: u, v)
        c, _ = fl.scan(lambda c, x: (c * x + big[:3], None), v, fnp.ones((2, 3)))
        return fnp.sum(c)

    return f, weakref.ref(big._buf)


def test_control_flow_graphs_are_not_kept_alive_by_the_cache():
    f, ref = _control_flow_loss()
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(fl.grad(f)(fnp.ones(3))), np.ones(3))
    del f
    gc.collect()
    assert ref() is None


def test_the_cache_is_bounded():
    g = fl.grad(lambda v: fnp.sum(fnp.sin(v)))
    for n in range(1, cb._MAX_ENTRIES + 20):
        g(fnp.ones(n))
    assert len(cb._cache) <= cb._MAX_ENTRIES


def test_the_x64_flag_is_part_of_the_structure():
    x = np.linspace(0.0, 1.0, 4)  # float64 input: gradients follow the input
    g = fl.grad(lambda v: fnp.sum(v * fnp.ones(4)))
    for _ in range(2):
        assert g(x).dtype == np.float64
    with fl.config.enable_x64():
        for _ in range(2):
            assert g(x).dtype == np.float64
            assert fl.grad(lambda v: fnp.sum(v * fnp.ones(4)).astype(fnp.float32))(
                x).dtype == np.float64
