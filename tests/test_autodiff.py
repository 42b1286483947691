"""Composition, pytree, custom-rule and error tests for grad/vjp/jvp/jacobians."""

import collections

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp


def f64(x):
    return fnp.asarray(np.asarray(x, dtype=np.float64))


# --- closed forms -------------------------------------------------------------------------
def test_third_derivative_of_sin_times_cube():
    # f = x^3 sin x;  f''' = -x^3 cos x - 9 x^2 sin x + 18 x cos x + 6 sin x
    f = lambda x: x ** 3 * fnp.sin(x)
    x = 0.7
    want = -x**3 * np.cos(x) - 9 * x**2 * np.sin(x) + 18 * x * np.cos(x) + 6 * np.sin(x)
    got = fl.grad(fl.grad(fl.grad(f)))(f64(x))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_grad_of_tanh_chain_matches_closed_form():
    x = f64([0.1, -0.4, 1.3])
    g = fl.grad(lambda x: fnp.sum(fnp.tanh(x) ** 2))(x)
    t = np.tanh(np.asarray(x))
    np.testing.assert_allclose(g, 2 * t * (1 - t * t), rtol=1e-12)


def test_hessian_matches_finite_difference_of_grad():
    f = lambda x: fnp.sum(fnp.exp(x[0] * x) * fnp.cos(x))
    x = np.array([0.3, -0.2, 0.5])
    H = np.asarray(fl.hessian(f)(f64(x)))
    g = fl.grad(f)
    eps = 1e-6
    fd = np.stack([(np.asarray(g(f64(x + eps * e))) - np.asarray(g(f64(x - eps * e)))) / (2 * eps)
                   for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(H, H.T, rtol=1e-10)


def test_jacfwd_equals_jacrev_on_pytrees():
    def f(p):
        return {"y": fnp.sin(p["a"]) * p["b"][0], "z": fnp.sum(p["b"][1] ** 2)}
    p = {"a": f64([0.1, 0.2, 0.3]), "b": (f64(2.0), f64([[1.0, -1.0]]))}
    jf, jr = fl.jacfwd(f)(p), fl.jacrev(f)(p)
    assert fl.tree.structure(jf) == fl.tree.structure(jr)
    for a, b in zip(fl.tree.leaves(jf), fl.tree.leaves(jr)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert jf["y"]["b"][1].shape == (3, 1, 2)
    assert jf["z"]["a"].shape == (3,)


def test_jacobian_argnums_tuple():
    jac = fl.jacrev(lambda x, y: x * y, argnums=(0, 1))(f64([1.0, 2.0]), f64([3.0, 4.0]))
    np.testing.assert_allclose(jac[0], np.diag([3.0, 4.0]))
    np.testing.assert_allclose(jac[1], np.diag([1.0, 2.0]))


# --- grad API -----------------------------------------------------------------------------
def test_grad_argnums_and_has_aux():
    def loss(w, b, x):
        y = w * x + b
        return fnp.sum(y ** 2), {"y": y}
    (gw, gb), aux = fl.grad(loss, argnums=(0, 1), has_aux=True)(f64(2.0), f64(1.0), f64([1.0, 2.0]))
    np.testing.assert_allclose(gw, 2 * (3.0 * 1 + 5.0 * 2))
    np.testing.assert_allclose(gb, 2 * (3.0 + 5.0))
    np.testing.assert_allclose(aux["y"], [3.0, 5.0])
    assert type(aux["y"]) is fl.Array  # aux comes back as plain values, not tracers


def test_value_and_grad_on_namedtuple_params():
    Params = collections.namedtuple("Params", ["w", "b"])
    p = Params(f64([1.0, 2.0]), f64(0.5))
    value, g = fl.value_and_grad(lambda p: fnp.sum(p.w * 3.0) + p.b ** 2)(p)
    assert isinstance(g, Params)
    np.testing.assert_allclose(value, 9.25)
    np.testing.assert_allclose(g.w, [3.0, 3.0])
    np.testing.assert_allclose(g.b, 1.0)


def test_gradient_keeps_input_dtype_and_python_float_input():
    g = fl.grad(lambda x: fnp.sum(x * 2.0))(fnp.ones(3))
    assert g.dtype == np.float32
    assert fl.grad(lambda x: x * x)(3.0).dtype == np.float32


def test_unused_input_gets_zero_gradient():
    g = fl.grad(lambda x, y: fnp.sum(x), argnums=(0, 1))(f64([1.0]), f64([[1.0, 2.0]]))
    np.testing.assert_array_equal(g[1], np.zeros((1, 2)))


def test_broadcast_operand_gradient_is_summed_back():
    g = fl.grad(lambda b: fnp.sum(f64([[1.0, 2.0], [3.0, 4.0]]) * b))(f64([[1.0, 1.0]]))
    np.testing.assert_allclose(g, [[4.0, 6.0]])


@pytest.mark.parametrize("on_buffers", [True, False], ids=["buffers", "arrays"])
def test_one_value_as_both_operands(on_buffers, monkeypatch):
    """``x op x``: both cotangents go to one slot. On buffers the two operands are one
    ndarray, which only a symmetric op (``x * x``) may treat as one cotangent."""
    from functorch_lite import autodiff

    monkeypatch.setattr(autodiff, "_RULES_ON_BUFFERS", on_buffers)
    x = fnp.array([1.0, -2.0, 3.0], dtype=np.float64)
    cases = {fnp.subtract: [0, 0, 0], fnp.true_divide: [0, 0, 0], fnp.add: [2, 2, 2],
             fnp.multiply: [2, -4, 6], fnp.maximum: [1, 1, 1], fnp.minimum: [1, 1, 1]}
    for op, want in cases.items():
        got = fl.grad(lambda v, op=op: fnp.sum(op(v, v)))(x)
        np.testing.assert_allclose(got, want, err_msg=op.__name__)


def test_masked_gradients_stay_finite():
    f = lambda x: fnp.where(x > 0, fnp.sqrt(fnp.where(x > 0, x, 1.0)), 0.0)
    assert float(fl.grad(f)(0.0)) == 0.0


def test_grad_through_plain_numpy_code():
    x = f64([0.1, 0.5, 2.0])
    g = fl.grad(lambda x: np.sum(np.sin(x)))(x)
    np.testing.assert_allclose(g, np.cos(np.asarray(x)), rtol=1e-12)


def test_python_control_flow_on_concrete_values_under_grad():
    def f(x):
        return x * x if x > 0 else -x
    assert float(fl.grad(f)(3.0)) == 6.0
    assert float(fl.grad(f)(-3.0)) == -1.0


def test_stop_gradient_and_integer_outputs_carry_no_gradient():
    g = fl.grad(lambda x: fnp.sum(x * fl.stop_gradient(x)))(f64([2.0]))
    np.testing.assert_allclose(g, [2.0])
    g = fl.grad(lambda x: fnp.sum(x * fnp.astype(x, "int64")))(f64([2.7]))
    np.testing.assert_allclose(g, [2.0])


def test_stop_gradient_blocks_derivatives_in_every_context():
    """Its fast paths (an eager Array, a value of the innermost top-level reverse trace)
    and the general one (nested transforms, jit, vmap, pytrees) agree."""
    x = f64([2.0, 3.0])
    assert fl.stop_gradient(x) is x
    f = lambda v: fnp.sum(v * v * fl.stop_gradient(v))  # d/dv = 2 v sg(v)
    np.testing.assert_allclose(fl.grad(f)(x), 2 * x * x)
    np.testing.assert_allclose(fl.jit(fl.grad(f))(x), 2 * x * x)
    np.testing.assert_allclose(fl.jvp(f, (x,), (fnp.ones(2, "float64"),))[1], 26.0)
    np.testing.assert_allclose(fl.hessian(f)(x), np.diag(2 * np.asarray(x)))
    np.testing.assert_allclose(fl.vmap(fl.grad(f))(x[:, None]), (2 * x * x)[:, None])
    outer = fl.grad(lambda v: fnp.sum(fl.grad(f)(v) * fl.stop_gradient(v)))(x)
    np.testing.assert_allclose(outer, 2 * x * x)  # sum(2 v sg(v) sg(v)): d/dv = 2 sg(v)^2
    tree = fl.grad(lambda p: fnp.sum(p["a"] * fl.stop_gradient(p)["a"]))({"a": x})
    np.testing.assert_allclose(tree["a"], x)


def test_reverse_mode_keeps_only_what_the_backward_pass_reads():
    # x @ w is read by nothing in the backward pass of x @ w + b (matmul's rule needs x and
    # w, add's only shapes): the tape must not keep it alive until the backward pass.
    import gc
    import weakref

    seen = []

    def loss(w):
        xw = fnp.ones((128, 4)) @ w  # big enough to be worth dropping (>= 4096 elements)
        seen.append(weakref.ref(xw.primal._buf))
        h = fnp.maximum(xw + 1.0, 0.0)
        del xw
        gc.collect()
        seen.append(seen[0]() is None)  # freed before the loss is even computed
        return fnp.sum(h * h)

    g = fl.grad(loss)(fnp.ones((4, 64)))
    assert seen[1], "the matmul result is still referenced by the tape"
    np.testing.assert_allclose(g, np.full((4, 64), 128 * 10.0))


def test_jvp_and_vjp_agree():
    f = lambda x, y: fnp.exp(x) * fnp.sin(y)
    x, y = f64([0.2, 0.3]), f64([1.0, -1.0])
    out, t = fl.jvp(f, (x, y), (f64([1.0, 0.0]), f64([0.0, 0.0])))
    _, pullback = fl.vjp(f, x, y)
    ct_x, ct_y = pullback(f64([1.0, 0.0]))
    np.testing.assert_allclose(t[0], ct_x[0])


# --- custom rules and checkpoint ------------------------------------------------------------
def test_custom_vjp_replaces_the_gradient():
    @fl.custom_vjp
    def clip_grad(x):
        return x

    clip_grad.defvjp(lambda x: (x, None), lambda res, g: (fnp.clip(g, -1.0, 1.0),))
    assert float(fl.grad(lambda x: 5.0 * clip_grad(x))(2.0)) == 1.0
    np.testing.assert_allclose(clip_grad(f64([3.0])), [3.0])


def test_custom_vjp_forward_mode_is_a_clear_error():
    @fl.custom_vjp
    def f(x):
        return x

    f.defvjp(lambda x: (x, None), lambda res, g: (g,))
    with pytest.raises(TypeError, match="forward-mode"):
        fl.jvp(f, (f64(1.0),), (f64(1.0),))


def test_custom_jvp_used_by_forward_and_reverse_mode():
    @fl.custom_jvp
    def log1pexp(x):
        return fnp.log1p(fnp.exp(x))

    @log1pexp.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return log1pexp(x), t * (1 - 1 / (1 + fnp.exp(x)))

    # the naive derivative overflows to nan at x = 1000; the custom rule stays at 1
    assert float(fl.grad(log1pexp)(f64(1000.0))) == 1.0
    assert float(fl.jvp(log1pexp, (f64(1000.0),), (f64(1.0),))[1]) == 1.0
    np.testing.assert_allclose(fl.grad(fl.grad(log1pexp))(f64(0.0)), 0.25)


def test_checkpoint_gives_the_same_gradients_and_records_one_entry():
    block = lambda x: fnp.tanh(fnp.sin(x) * x)
    x = f64([0.3, -1.2])
    g_plain = fl.grad(lambda x: fnp.sum(block(x)))(x)
    g_ckpt = fl.grad(lambda x: fnp.sum(fl.checkpoint(block)(x)))(x)
    np.testing.assert_allclose(g_plain, g_ckpt, rtol=1e-12)
    fl.debug.check_grads(fl.checkpoint(block), (x,), order=2)


# --- errors ---------------------------------------------------------------------------------
def test_grad_of_non_scalar_output_names_the_shape_and_fix():
    with pytest.raises(TypeError, match=r"scalar.*shape \(2,\).*fnp.sum"):
        fl.grad(lambda x: x * 2)(fnp.ones(2))


def test_grad_of_integer_output_is_an_error():
    with pytest.raises(TypeError, match="floating-point"):
        fl.grad(lambda x: fnp.astype(fnp.sum(x), "int64"))(fnp.ones(2))


def test_grad_of_integer_input_names_the_argument():
    with pytest.raises(TypeError, match=r"args\[0\]\['w'\].*int64"):
        fl.grad(lambda p: fnp.sum(p["w"]))({"w": fnp.arange(3)})


def test_has_aux_without_a_pair_is_an_error():
    with pytest.raises(TypeError, match="has_aux"):
        fl.grad(lambda x: fnp.sum(x), has_aux=True)(fnp.ones(2))


def test_leaked_tracer_fails_loudly():
    leaked = []

    def f(x):
        leaked.append(x)
        return fnp.sum(x)

    fl.grad(f)(fnp.ones(2))
    with pytest.raises(fl.LeakedTracerError, match="leaked tracer"):
        fnp.sin(leaked[0])
    with pytest.raises(fl.LeakedTracerError):
        fl.grad(lambda y: fnp.sum(y * leaked[0]))(fnp.ones(2))


def test_in_place_update_on_a_tracer_names_at():
    def f(x):
        x[0] = 1.0
        return fnp.sum(x)

    with pytest.raises(TypeError, match=r"\.at\[0\]\.set"):
        fl.grad(f)(fnp.ones(2))


def test_np_asarray_of_a_tracer_raises_naming_the_transform():
    with pytest.raises(fl.ConcretizationError, match="grad"):
        fl.grad(lambda x: fnp.sum(np.asarray(x)))(fnp.ones(2))


def test_argnums_out_of_range():
    with pytest.raises(ValueError, match="argnums"):
        fl.grad(lambda x: x, argnums=2)(1.0)


def test_errors_inside_grad_point_at_the_user_line(monkeypatch):
    import traceback

    monkeypatch.delenv("FL_SHOW_INTERNAL_FRAMES", raising=False)

    def loss(x):
        return fnp.sum(x + fnp.ones(4))  # the mistake: shapes (3,) and (4,)

    with pytest.raises(ValueError, match=r"fnp\.add.*\(3,\) and \(4,\)") as info:
        fl.grad(loss)(fnp.ones(3))
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].line.startswith("return fnp.sum(x + fnp.ones(4))")
    assert not any("functorch_lite" in f.filename for f in frames)
    assert any("internal frames hidden" in n for n in info.value.__notes__)


# --- custom rules under vmap (the rule must survive batching) --------------------------------
def _clip_grad():
    @fl.custom_vjp
    def clip_grad(x, scale):
        return x * scale

    clip_grad.defvjp(lambda x, s: (x * s, s),
                     lambda s, g: (fnp.clip(g * s, -1.0, 1.0), fnp.zeros_like(s)))
    return clip_grad


def test_vmap_of_grad_of_custom_vjp_keeps_the_rule():
    clip_grad = _clip_grad()
    xs = f64([1.0, 2.0, 3.0])
    g = fl.vmap(fl.grad(lambda x: 5.0 * clip_grad(x, f64(2.0))))(xs)
    np.testing.assert_allclose(g, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(fl.vmap(lambda x: clip_grad(x, f64(2.0)))(xs), [2.0, 4.0, 6.0])


def test_grad_of_vmap_of_custom_vjp_sums_shared_cotangents():
    @fl.custom_vjp
    def f(x, w):
        return x * w

    f.defvjp(lambda x, w: (x * w, (x, w)), lambda res, g: (3.0 * g * res[1], 3.0 * g * res[0]))
    xs = f64([1.0, 2.0, 3.0])
    gw = fl.grad(lambda w: fnp.sum(fl.vmap(f, in_axes=(0, None))(xs, w)))(f64(2.0))
    np.testing.assert_allclose(gw, 3.0 * 6.0)  # the rule's 3x, summed over the batch


def test_custom_jvp_and_checkpoint_under_vmap_in_both_orders():
    @fl.custom_jvp
    def softplus(x):
        return fnp.log1p(fnp.exp(x))

    @softplus.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return softplus(x), t / (1 + fnp.exp(-x))

    xs = f64([-1.0, 0.0, 1000.0])
    sig = 1 / (1 + np.exp(-np.asarray(xs)))
    np.testing.assert_allclose(fl.vmap(fl.grad(softplus))(xs), sig)
    np.testing.assert_allclose(fl.grad(lambda x: fnp.sum(fl.vmap(softplus)(x)))(xs), sig)
    block = fl.checkpoint(lambda x: fnp.sin(x) * x)
    want = np.cos(np.asarray(xs)) * np.asarray(xs) + np.sin(np.asarray(xs))
    np.testing.assert_allclose(fl.vmap(fl.grad(block))(xs), want)
    np.testing.assert_allclose(fl.grad(lambda x: fnp.sum(fl.vmap(block)(x)))(xs), want)
