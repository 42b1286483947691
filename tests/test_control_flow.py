"""cond / switch / while_loop / fori_loop / scan: values against Python references,
derivatives (float64, against finite differences and Python-loop references), batching,
jit graphs and generated code, and the error messages."""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp


def _f64(*shape, seed=0):
    return fnp.asarray(np.random.RandomState(seed).standard_normal(shape))


def _close(got, want, rtol=1e-10):
    got_leaves, want_leaves = fl.tree.leaves(got), fl.tree.leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=1e-12)


def _prims(graph):
    return [e.prim.name for e in graph.eqns]


# --------------------------------------------------------------------------------------
# cond / switch
# --------------------------------------------------------------------------------------
def _piecewise(x):
    return fl.cond(fnp.sum(x) > 0, lambda v: {"y": fnp.sin(v) * v},
                   lambda v: {"y": fnp.exp(v) - 1}, x)


def _piecewise_ref(x):
    return {"y": fnp.sin(x) * x} if float(fnp.sum(x)) > 0 else {"y": fnp.exp(x) - 1}


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_values_and_derivatives(sign):
    x = _f64(3) * 0 + sign * fnp.asarray([0.5, 1.0, 1.5])
    _close(_piecewise(x), _piecewise_ref(x))
    jitted = fl.jit(_piecewise)
    _close(jitted(x), _piecewise_ref(x))
    loss = lambda x: fnp.sum(_piecewise(x)["y"])  # noqa: E731
    loss_ref = lambda x: fnp.sum(_piecewise_ref(x)["y"])  # noqa: E731
    want = fl.grad(loss_ref)(x)
    _close(fl.grad(loss)(x), want)
    _close(fl.jit(fl.grad(loss))(x), want)
    _close(fl.grad(fl.jit(loss))(x), want)
    fl.debug.check_grads(loss, (x,), order=2)
    fl.debug.check_grads(fl.jit(loss), (x,), order=2)


def test_cond_traces_both_branches_once_and_emits_an_if():
    f = fl.jit(_piecewise)
    f(fnp.ones(3))
    f(-fnp.ones(3))
    assert f.trace_count == 1
    lowered = f.lower(fnp.ones(3))
    assert _prims(lowered.graph).count("cond") == 1
    assert "if " in lowered.source and "else:" in lowered.source


def test_cond_under_vmap_batched_and_unbatched_predicate():
    xs = fnp.asarray([[0.5, 1.0], [-2.0, -1.0], [1.0, -3.0]], dtype=np.float64)
    want = fnp.stack([_piecewise_ref(x)["y"] for x in xs])
    _close(fl.vmap(_piecewise)(xs)["y"], want)
    _close(fl.jit(fl.vmap(_piecewise))(xs)["y"], want)
    # Unbatched predicate, batched operand: one branch runs on the whole batch.
    f = lambda p, x: fl.cond(p > 0, fnp.sin, fnp.cos, x)  # noqa: E731
    _close(fl.vmap(f, in_axes=(None, 0))(fnp.asarray(1.0), xs), fnp.sin(xs))
    _close(fl.vmap(fl.grad(lambda x: fnp.sum(_piecewise(x)["y"])))(xs),
           fnp.stack([fl.grad(lambda x: fnp.sum(_piecewise_ref(x)["y"]))(x) for x in xs]))


def test_cond_closes_over_outer_values():
    def f(w, x):
        return fl.cond(x > 0, lambda: w * x, lambda: w * w)  # no operands: closures only

    w = fnp.asarray(3.0, dtype=np.float64)
    for x, want in ((2.0, 2.0), (-1.0, 6.0)):
        x = fnp.asarray(x, dtype=np.float64)
        _close(fl.grad(f)(w, x), want)
        _close(fl.jit(fl.grad(f))(w, x), want)
        _close(fl.vmap(fl.grad(f), in_axes=(None, 0))(w, fnp.stack([x, x])),
               fnp.asarray([want, want]))


def test_cond_branch_outputs_join_weak_types():
    f = fl.jit(lambda x: fl.cond(x > 0, lambda v: v, lambda v: 0.0, x))
    out = f(fnp.asarray(-1.0))
    assert out.dtype == np.float32 and float(out) == 0.0


def test_cond_errors():
    x = fnp.ones(2)
    jitted = fl.jit(lambda x: fl.cond(fnp.sum(x) > 0, lambda v: v, lambda v: (v, v), x))
    with pytest.raises(TypeError, match="fl.cond: the branches must return the same structure"):
        jitted(x)
    jitted = fl.jit(lambda x: fl.cond(fnp.sum(x) > 0, lambda v: v, lambda v: v[:1], x))
    with pytest.raises(TypeError, match=r"same shapes and dtypes.*f32\[1\].*f32\[2\]"):
        jitted(x)
    with pytest.raises(TypeError, match="pred must be a scalar"):
        fl.jit(lambda x: fl.cond(x > 0, fnp.sin, fnp.cos, x))(x)


def test_switch_clamps_the_index():
    branches = [lambda x: x + 1, lambda x: x * 10, lambda x: -x]
    f = fl.jit(lambda i, x: fl.switch(i, branches, x))
    x = fnp.asarray(2.0)
    for i, want in ((-5, 3.0), (0, 3.0), (1, 20.0), (2, -2.0), (7, -2.0)):
        assert float(f(fnp.asarray(i), x)) == want
        assert float(fl.switch(i, branches, x)) == want
    assert f.trace_count == 1
    got = fl.vmap(lambda i, x: fl.switch(i, branches, x))(fnp.asarray([0, 1, 2, 9]),
                                                          fnp.asarray([1.0, 2.0, 3.0, 4.0]))
    _close(got, fnp.asarray([2.0, 20.0, -3.0, -4.0]))


def test_debug_print_in_a_branch_prints_only_when_taken(capsys):
    def f(x):
        def loud(v):
            fl.debug.print("taken with {}", v)
            return v
        return fl.cond(x > 0, loud, lambda v: -v, x)

    jitted = fl.jit(f)
    jitted(fnp.asarray(-1.0))
    assert capsys.readouterr().out == ""
    jitted(fnp.asarray(2.0))
    assert capsys.readouterr().out == "taken with 2.0\n"


# --------------------------------------------------------------------------------------
# while_loop
# --------------------------------------------------------------------------------------
def _collatz_steps(n):
    def body(state):
        n, steps = state
        return fnp.where(n % 2 == 0, n // 2, 3 * n + 1), steps + 1
    return fl.while_loop(lambda s: s[0] != 1, body, (n, 0))[1]


def test_while_loop_values_eager_jit_vmap():
    ns = [1, 6, 7, 27]
    want = [0, 8, 16, 111]
    assert [int(_collatz_steps(fnp.asarray(n))) for n in ns] == want
    jitted = fl.jit(_collatz_steps)
    assert [int(jitted(fnp.asarray(n))) for n in ns] == want
    assert jitted.trace_count == 1
    assert "while " in jitted.lower(fnp.asarray(6)).source
    # A batched predicate: each example stops after its own number of steps.
    np.testing.assert_array_equal(fl.vmap(_collatz_steps)(fnp.asarray(ns)), want)
    np.testing.assert_array_equal(fl.jit(fl.vmap(_collatz_steps))(fnp.asarray(ns)), want)


def test_while_loop_forward_mode_derivatives():
    def f(x):
        return fl.while_loop(lambda v: fnp.max(v) < 5.0, lambda v: v * 1.5 + fnp.sin(v), x)

    def ref(x):
        while float(fnp.max(x)) < 5.0:
            x = x * 1.5 + fnp.sin(x)
        return x

    x = fnp.asarray([0.3, 1.1], dtype=np.float64)
    _close(f(x), ref(x))
    _close(fl.jacfwd(f)(x), fl.jacfwd(ref)(x))
    _close(fl.jit(fl.jacfwd(f))(x), fl.jacfwd(ref)(x))
    fl.debug.check_grads(f, (x,), order=2, modes=("fwd",))


def test_while_loop_reverse_mode_error_suggests_fori_or_scan():
    f = lambda x: fl.while_loop(lambda v: v < 10.0, lambda v: v * 2.0, x)  # noqa: E731
    with pytest.raises(TypeError, match="reverse-mode.*fl.fori_loop.*fl.scan"):
        fl.grad(f)(fnp.asarray(1.0))


def test_while_loop_carry_errors():
    with pytest.raises(TypeError, match=r"carry at \[0\] is f32\[2\] on input and f32\[4\]"):
        fl.jit(lambda x: fl.while_loop(lambda c: c[1] < 3,
                                       lambda c: (fnp.concatenate([c[0], c[0]]), c[1] + 1),
                                       (x, 0)))(fnp.ones(2))
    with pytest.raises(TypeError, match=r"f32\[\] on input and f64\[\]"):
        fl.jit(lambda x: fl.while_loop(lambda v: v < 3, lambda v: v + fnp.ones((), "float64"),
                                       x))(fnp.asarray(1.0))
    with pytest.raises(TypeError, match="must return a boolean scalar"):
        fl.jit(lambda x: fl.while_loop(lambda v: v, lambda v: v, x))(fnp.asarray(1.0))
    with pytest.raises(TypeError, match="same structure"):
        fl.while_loop(lambda c: c[0] < 3, lambda c: c[0] + 1, (fnp.asarray(0), 1))


# --------------------------------------------------------------------------------------
# fori_loop
# --------------------------------------------------------------------------------------
def _power_series(x, n=6):
    return fl.fori_loop(0, n, lambda i, acc: acc * x + (i + 1), fnp.zeros_like(x))


def _power_series_ref(x, n=6):
    acc = fnp.zeros_like(x)
    for i in range(n):
        acc = acc * x + (i + 1)
    return acc


def test_fori_loop_static_bounds_is_a_differentiable_scan():
    x = fnp.asarray([0.4, -0.7], dtype=np.float64)
    _close(_power_series(x), _power_series_ref(x))
    graph = fl.make_graph(_power_series)(x)
    assert _prims(graph) == ["scan"]
    loss = lambda x: fnp.sum(_power_series(x) ** 2)  # noqa: E731
    want = fl.grad(lambda x: fnp.sum(_power_series_ref(x) ** 2))(x)
    _close(fl.grad(loss)(x), want)
    _close(fl.jit(fl.grad(loss))(x), want)
    fl.debug.check_grads(loss, (x,), order=2)
    # The counter is weakly typed: float32 carries stay float32.
    assert _power_series(fnp.ones(2)).dtype == np.float32
    assert fl.jit(_power_series)(fnp.ones(2)).dtype == np.float32


def test_fori_loop_traced_bounds_is_a_while_loop():
    f = fl.jit(lambda n, x: fl.fori_loop(0, n, lambda i, v: v + fnp.astype(i, v.dtype), x))
    assert float(f(fnp.asarray(4), fnp.asarray(0.0))) == 6.0
    assert float(f(fnp.asarray(5), fnp.asarray(0.0))) == 10.0
    assert f.trace_count == 1
    assert "while" in _prims(f.lower(fnp.asarray(4), fnp.asarray(0.0)).graph)


def test_fori_loop_eager_passes_python_ints():
    seen = []
    fl.fori_loop(2, 5, lambda i, v: seen.append(i) or v, fnp.zeros(()))
    assert seen == [2, 3, 4] and all(type(i) is int for i in seen)


# --------------------------------------------------------------------------------------
# scan
# --------------------------------------------------------------------------------------
def _rnn(params, h0, xs):
    def step(h, x):
        h = fnp.tanh(h @ params["w"] + x * params["u"])
        return h, {"h": h, "norm": fnp.sum(h * h)}
    return fl.scan(step, h0, xs)


def _rnn_ref(params, h0, xs, reverse=False):
    h, outs = h0, [None] * xs.shape[0]
    for i in (range(xs.shape[0] - 1, -1, -1) if reverse else range(xs.shape[0])):
        h = fnp.tanh(h @ params["w"] + xs[i] * params["u"])
        outs[i] = {"h": h, "norm": fnp.sum(h * h)}
    return h, {"h": fnp.stack([o["h"] for o in outs]),
               "norm": fnp.stack([o["norm"] for o in outs])}


def _rnn_args():
    return ({"w": _f64(3, 3) * 0.5, "u": _f64(3, seed=1)}, _f64(3, seed=2),
            _f64(5, 3, seed=3))


def test_scan_values_eager_and_jit():
    args = _rnn_args()
    _close(_rnn(*args), _rnn_ref(*args))
    jitted = fl.jit(_rnn)
    _close(jitted(*args), _rnn_ref(*args))
    lowered = jitted.lower(*args)
    assert _prims(lowered.graph) == ["scan"] and "for " in lowered.source


def test_scan_reverse_and_length_without_xs():
    args = _rnn_args()
    f = lambda p, h, xs: fl.scan(  # noqa: E731
        lambda h, x: (fnp.tanh(h @ p["w"] + x * p["u"]), fnp.sum(h)), h, xs, reverse=True)
    got_h, got_ys = fl.jit(f)(*args)
    want_h, _ = _rnn_ref(*args, reverse=True)
    _close(got_h, want_h)
    _close(fl.jit(f)(*args), f(*args))
    count = fl.scan(lambda c, _: (c + 1, c * 2), 0, None, length=4)
    assert int(count[0]) == 4 and list(np.asarray(count[1])) == [0, 2, 4, 6]
    _close(fl.jit(lambda: fl.scan(lambda c, _: (c + 1.0, c), 0.0, None, length=3))(),
           (3.0, fnp.asarray([0.0, 1.0, 2.0])))


def test_scan_gradients_match_the_python_loop():
    params, h0, xs = _rnn_args()

    def loss(f):
        def total(params, h0, xs):
            h, ys = f(params, h0, xs)
            return fnp.sum(h) + fnp.sum(ys["norm"] * fnp.arange(5.0))
        return total

    want = fl.grad(loss(_rnn_ref), argnums=(0, 1, 2))(params, h0, xs)
    _close(fl.grad(loss(_rnn), argnums=(0, 1, 2))(params, h0, xs), want)
    _close(fl.jit(fl.grad(loss(_rnn), argnums=(0, 1, 2)))(params, h0, xs), want)
    _close(fl.grad(fl.jit(loss(_rnn)), argnums=(0, 1, 2))(params, h0, xs), want)
    fl.debug.check_grads(loss(_rnn), (params, h0, xs), order=2)


def test_scan_closure_gradient_and_hessian():
    xs = _f64(4, seed=5)

    def f(w):
        return fl.scan(lambda c, x: (c * w + x, c), fnp.asarray(1.0, np.float64), xs)[0]

    def ref(w):
        c = 1.0
        for x in xs:
            c = c * w + x
        return c

    w = fnp.asarray(0.7, np.float64)
    _close(fl.grad(f)(w), fl.grad(ref)(w))
    _close(fl.hessian(f)(w), fl.hessian(ref)(w))
    _close(fl.jit(fl.hessian(f))(w), fl.hessian(ref)(w))


def _tapped_rnn_loss(calls, step_extra=None, use_scan=True):
    """Loss of a small tanh RNN whose step taps its carry (counting forward evaluations
    of the body) and wires in an integer carry, a mask and a pass-through output."""
    xs = fnp.asarray(np.random.default_rng(3).standard_normal((5, 2, 3)))
    ids = fnp.arange(5)

    def step(carry, inputs):
        h, count = carry
        x, i = inputs
        fl.debug.tap(h, lambda v: calls.append(1))
        z = h @ step.w + x
        if step_extra is not None:
            z = step_extra(z)
        h_new = fnp.where(z > 0, fnp.tanh(z), 0.5 * z) * (1.0 + 0.1 * i)
        return (h_new, count + 1), {"h": h, "norm": fnp.sum(h_new * h_new)}

    def loss(w, h0):
        step.w = w
        carry = (h0, fnp.asarray(0))
        if use_scan:
            (h, count), ys = fl.scan(step, carry, (xs, ids))
        else:
            per_step = []
            for t in range(5):
                carry, y = step(carry, (xs[t], ids[t]))
                per_step.append(y)
            (h, count), ys = carry, fl.tree.map(lambda *v: fnp.stack(v), *per_step)
        return fnp.sum(h) + fnp.sum(ys["norm"]) + 0.5 * fnp.sum(ys["h"]) + count

    return loss


def test_scan_gradient_saves_the_step_residuals_instead_of_recomputing_the_step():
    """Reverse mode through scan runs the body forward once per step (the tap fires 5
    times, not 10) and gives the gradient of the unrolled loop, eagerly and jitted."""
    w = fnp.asarray(np.random.default_rng(4).standard_normal((3, 3)) * 0.5)
    h0 = fnp.asarray(np.full((2, 3), 0.3))
    calls = []
    want = fl.grad(_tapped_rnn_loss(calls, use_scan=False), argnums=(0, 1))(w, h0)
    for transform in (fl.grad, lambda f, **kw: fl.jit(fl.grad(f, **kw))):
        calls.clear()
        _close(transform(_tapped_rnn_loss(calls), argnums=(0, 1))(w, h0), want)
        assert len(calls) == 5


def test_scan_gradient_recomputes_steps_with_custom_rules():
    """A body with a custom_vjp inside keeps the general path (each step's forward is
    redone in the backward pass, so the tap fires twice per step), with the same result."""
    @fl.custom_vjp
    def scaled(z):
        return 2.0 * z

    scaled.defvjp(lambda z: (2.0 * z, None), lambda _, ct: (2.0 * ct,))
    w = fnp.asarray(np.random.default_rng(4).standard_normal((3, 3)) * 0.5)
    h0 = fnp.asarray(np.full((2, 3), 0.3))
    calls = []
    want = fl.grad(_tapped_rnn_loss(calls, scaled, use_scan=False))(w, h0)
    calls.clear()
    _close(fl.grad(_tapped_rnn_loss(calls, scaled))(w, h0), want)
    assert len(calls) == 10


def test_scan_under_vmap():
    params, h0, xs = _rnn_args()
    h0s, xss = fnp.stack([h0, -h0]), fnp.stack([xs, xs * 0.5])
    want = [_rnn_ref(params, h, x) for h, x in zip(h0s, xss)]
    got = fl.vmap(_rnn, in_axes=(None, 0, 0))(params, h0s, xss)
    for k in range(2):
        _close(fl.tree.map(lambda v, k=k: v[k], got), want[k])
    # xs batched along another axis, carry unbatched
    got = fl.vmap(_rnn, in_axes=(None, None, 1))(params, h0, fnp.stack([xs, -xs], axis=1))
    _close(fl.tree.map(lambda v: v[1], got), _rnn_ref(params, h0, -xs))


def test_scan_errors():
    xs = fnp.ones((3, 2))
    with pytest.raises(ValueError, match="leading axes of xs must all have the same size"):
        fl.scan(lambda c, x: (c, x), 0.0, (xs, fnp.ones(4)))
    with pytest.raises(ValueError, match="pass length"):
        fl.scan(lambda c, x: (c, x), 0.0, None)
    with pytest.raises(TypeError, match=r"must return a pair \(carry, y\)"):
        fl.jit(lambda xs: fl.scan(lambda c, x: c, 0.0, xs))(xs)
    with pytest.raises(TypeError, match=r"carry at \(root\) is f32\[\] on input and f32\[2\]"):
        fl.jit(lambda xs: fl.scan(lambda c, x: (c + x, x), fnp.asarray(0.0), xs))(xs)


# --------------------------------------------------------------------------------------
# Nesting
# --------------------------------------------------------------------------------------
def test_nested_control_flow_under_jit_and_grad():
    def f(x):
        def step(c, k):
            c = fl.cond(k % 2 == 0, lambda v: v * x, lambda v: v + fnp.sin(x), c)
            inner = fl.fori_loop(0, 2, lambda i, v: v * 0.5 + x, c)
            return c, inner
        c, ys = fl.scan(step, fnp.asarray(1.0, np.float64), fnp.arange(4))
        return c + fnp.sum(ys)

    def ref(x):
        c, total = 1.0, 0.0
        for k in range(4):
            c = c * x if k % 2 == 0 else c + fnp.sin(x)
            v = c
            for _ in range(2):
                v = v * 0.5 + x
            total = total + v
        return c + total

    x = fnp.asarray(0.8, np.float64)
    _close(fl.jit(f)(x), ref(x))
    _close(fl.grad(f)(x), fl.grad(ref)(x))
    _close(fl.jit(fl.grad(f))(x), fl.grad(ref)(x))
    _close(fl.vmap(fl.grad(f))(fnp.stack([x, x * 2])),
           fnp.stack([fl.grad(ref)(x), fl.grad(ref)(x * 2)]))


@pytest.mark.parametrize("make", [
    lambda: fl.scan(lambda c, x: (c + 1.5, c), 0.0, fnp.arange(3)),
    lambda: fl.scan(lambda c, x: (c + 1, c * 2), 0, fnp.arange(3), reverse=True),
    lambda: fl.fori_loop(0, 3, lambda i, c: c + 1, 0),
    lambda: fl.while_loop(lambda c: c < 3, lambda c: c + 1.0, 0.0),
    lambda: fl.scan(lambda c, x: ((c[0] + x, c[1]), x), (0.0, fnp.ones(2)), fnp.arange(3.0)),
], ids=["scan-float", "scan-int-reverse", "fori", "while", "scan-pytree"])
def test_python_scalar_carries_come_back_as_arrays_eagerly_and_under_jit(make):
    # Eager loops returned Python scalars where the compiled loops returned arrays, and a
    # jitted scan stacked per-step Python floats as float64 where eager gave float32.
    eager, jitted = make(), fl.jit(make)()
    eager_leaves, jitted_leaves = fl.tree.leaves(eager), fl.tree.leaves(jitted)
    assert fl.tree.structure(eager) == fl.tree.structure(jitted)
    for e, j in zip(eager_leaves, jitted_leaves, strict=True):
        assert type(e) is fl.Array and type(j) is fl.Array
        assert e.dtype == j.dtype
        np.testing.assert_array_equal(np.asarray(e), np.asarray(j))
