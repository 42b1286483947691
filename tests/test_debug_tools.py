"""fl.debug.nans (raise at the first primitive creating a NaN) and fl.debug.tap (a forward
hook), eagerly and under jit, vmap, grad, jvp, control flow and their compositions."""

import traceback
import warnings

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite.core import ctx


@pytest.fixture(autouse=True)
def _checking_left_off():
    yield
    assert ctx.trace is None, "a test left NaN checking (or a trace) on"


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with warnings.catch_warnings():  # the NaNs these tests make on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _raises_nan(fn, *args):
    """The FloatingPointError ``fn(*args)`` raises with NaN checking on."""
    with fl.debug.nans(), pytest.raises(FloatingPointError) as info:
        fn(*args)
    return info.value


def _first_line(error):
    return str(error).splitlines()[0]


# --------------------------------------------------------------------------------------
# nans: eagerly
# --------------------------------------------------------------------------------------
def test_nans_is_off_by_default():
    out = fnp.log(fnp.array([1.0, -1.0]))
    assert np.isnan(np.asarray(out)[1])
    assert ctx.trace is None


@pytest.mark.parametrize("name, make", [
    ("log", lambda: fnp.log(fnp.array([1.0, -1.0]))),
    ("true_divide", lambda: fnp.zeros(3) / fnp.zeros(3)),
    ("subtract", lambda: fnp.array([np.inf, 1.0]) - fnp.array([np.inf, 1.0])),
])
def test_nans_names_the_primitive_shapes_and_line(name, make):
    error = _raises_nan(make)
    first = _first_line(error)
    assert first.startswith(f"{name} produced NaN from inputs without NaN: {name}(f32[")
    assert "NaN in 1 of 2 elements" in first or "NaN in 3 of 3 elements" in first
    assert f"at {__file__}:" in str(error)  # the user's line, with its code
    assert "lambda: " in str(error) and "fl.debug.nans(False)" in str(error)


def test_nans_error_traceback_shows_the_users_frames():
    def model(x):
        return fnp.sqrt(x - 2.0)

    error = _raises_nan(model, fnp.ones(3))
    frames = [f.name for f in traceback.extract_tb(error.__traceback__)]
    assert frames[-1] == "model"
    assert "sqrt(f32[3]) -> f32[3]" in str(error)


def test_an_input_that_already_holds_nan_is_not_reported():
    x = fnp.array([np.nan, 1.0, 4.0])
    with fl.debug.nans():
        np.testing.assert_array_equal(np.isnan(fnp.sqrt(x)), [True, False, False])
        assert np.isnan(float(fnp.sum(x * 2.0)))
        assert np.isnan(float(fl.jit(lambda v: fnp.max(fnp.log(v)))(x)))
        g = fl.grad(lambda v: fnp.sum(v * v))(x)
        assert np.isnan(np.asarray(g)[0])


def test_values_are_unchanged_when_checking_finds_nothing():
    def f(w, x):
        return fnp.sum(fnp.tanh(x @ w) ** 2)

    w, x = fnp.ones((3, 2)) * 0.1, fnp.arange(12.0).reshape(4, 3)
    want = (f(w, x), fl.grad(f)(w, x), fl.vmap(f, (None, 0))(w, x), fl.jit(fl.grad(f))(w, x))
    with fl.debug.nans():
        got = (f(w, x), fl.grad(f)(w, x), fl.vmap(f, (None, 0))(w, x),
               fl.jit(fl.grad(f))(w, x))
    for g, v in zip(got, want):
        np.testing.assert_allclose(g, v, rtol=1e-6)


def test_integer_and_complex_outputs():
    with fl.debug.nans():
        np.testing.assert_array_equal(fnp.arange(3) // 0, [0, 0, 0])  # no NaN in ints
    error = _raises_nan(lambda: fnp.array([1 + 0j]) * np.inf)  # imaginary part: 0 * inf
    assert _first_line(error).startswith("multiply produced NaN")


# --------------------------------------------------------------------------------------
# nans: turning it on and off
# --------------------------------------------------------------------------------------
def test_nans_on_and_off_globally():
    fl.debug.nans(True)
    try:
        with pytest.raises(FloatingPointError, match="log produced NaN"):
            fnp.log(fnp.array(-1.0))
        fl.debug.nans(True)  # already on: stays on
        with pytest.raises(FloatingPointError):
            fnp.log(fnp.array(-1.0))
    finally:
        fl.debug.nans(False)
    assert np.isnan(float(fnp.log(fnp.array(-1.0))))


def test_the_context_manager_restores_the_previous_setting():
    with fl.debug.nans():
        with fl.debug.nans(False):
            assert np.isnan(float(fnp.log(fnp.array(-1.0))))
        with pytest.raises(FloatingPointError):
            fnp.log(fnp.array(-1.0))
    assert ctx.trace is None
    with pytest.raises(KeyError):
        with fl.debug.nans():
            raise KeyError("leaving by an exception restores it too")
    assert np.isnan(float(fnp.log(fnp.array(-1.0))))


def test_checking_off_inside_a_transform_and_on_again_after():
    def f(x):
        with fl.debug.nans(False):
            y = fnp.log(-x)  # NaN, deliberately unchecked
        return fnp.sum(fnp.where(fnp.isnan(y), 0.0, y) + x)

    with fl.debug.nans():
        assert float(fl.grad(f)(fnp.array(1.0))) == 1.0
        with pytest.raises(FloatingPointError):
            fnp.log(fnp.array(-1.0))


def test_turning_it_on_inside_a_transform_raises():
    def f(x):
        with fl.debug.nans():
            return x * 2

    with pytest.raises(RuntimeError, match=r"fl.debug.nans\(True\) was called inside grad"):
        fl.grad(f)(1.0)
    with pytest.raises(RuntimeError, match="inside jit"):
        fl.jit(f)(fnp.ones(2))


# --------------------------------------------------------------------------------------
# nans: jit, grad, vmap, control flow and compositions
# --------------------------------------------------------------------------------------
def _log_of_double(x):
    y = x * 2.0
    return fnp.log(y)


def test_inside_jit_the_function_runs_again_without_jit_to_find_the_line():
    calls = []

    @fl.jit
    def f(x):
        calls.append(1)
        return _log_of_double(x) + 1.0

    np.testing.assert_allclose(f(fnp.ones(2)), np.log(2.0) + 1.0, rtol=1e-6)
    error = _raises_nan(f, fnp.array([1.0, -1.0]))
    text = str(error)
    assert _first_line(error).startswith("log produced NaN from inputs without NaN: log(f32[2])")
    assert "inside jit(f), run again without jit to find the line" in text
    assert "return fnp.log(y)" in text  # the line in the user's function
    frames = [f.name for f in traceback.extract_tb(error.__traceback__)]
    assert frames[-2:] == ["f", "_log_of_double"]


def test_a_jitted_method_and_static_arguments_run_again_without_jit():
    class Model:
        @fl.jit
        def apply(self, x):
            return fnp.log(x)

    error = _raises_nan(Model().apply, fnp.array(-1.0))
    assert "inside jit(apply), run again" in str(error)
    assert "return fnp.log(x)" in str(error)
    shifted = fl.jit(lambda x, n: fnp.sqrt(x - n), static_argnums=1)
    error = _raises_nan(shifted, fnp.array(1.0), 2)
    assert _first_line(error).startswith("sqrt produced NaN")


def test_the_backward_pass_is_checked_and_names_the_rule():
    # d/dx sqrt(x) * 0 at 0: the rule of sqrt multiplies a zero cotangent by 0.5 / 0 = inf
    error = _raises_nan(fl.grad(lambda x: fnp.sqrt(x) * 0.0), 0.0)
    assert "in the backward pass of grad: the derivative rule of sqrt" in str(error)
    assert fl.grad(lambda x: fnp.sqrt(x) * 0.0)(0.0) != 0  # NaN, unchecked


def test_a_custom_backward_rule_that_makes_nan_is_named():
    @fl.custom_vjp
    def f(x):
        return x

    f.defvjp(lambda x: (x, None), lambda res, g: (fnp.log(-g),))
    error = _raises_nan(fl.grad(lambda x: fnp.sum(f(x))), fnp.ones(2))
    assert _first_line(error).startswith("log produced NaN")
    assert "the derivative rule of custom_vjp_call" in str(error)


def test_forward_mode_rules_are_checked():
    error = _raises_nan(lambda: fl.jvp(fnp.sqrt, (fnp.zeros(2),), (fnp.zeros(2),)))
    assert "in forward mode (jvp): the derivative rule of sqrt" in str(error)


def test_vmap_and_vmap_of_grad():
    error = _raises_nan(fl.vmap(_log_of_double), fnp.array([1.0, -1.0]))
    assert _first_line(error).startswith("log produced NaN")
    assert "return fnp.log(y)" in str(error)
    error = _raises_nan(fl.vmap(fl.grad(lambda x: fnp.sqrt(x) * 0.0)), fnp.zeros(3))
    assert "the derivative rule of sqrt" in str(error)


@pytest.mark.parametrize("compose, context", [
    (lambda f: fl.jit(fl.grad(f)), "the derivative rule of sqrt"),
    (lambda f: fl.grad(fl.jit(f)), "the derivative rule of sqrt"),
    (lambda f: fl.jit(fl.vmap(fl.grad(f))), "the derivative rule of sqrt"),
    # The backward pass was staged into the jitted graph, which runs under vmap: the
    # equation is known, not the rule it came from.
    (lambda f: fl.vmap(fl.jit(fl.grad(f))), "inside jit(<lambda>)"),
])
def test_nested_transforms_find_the_nan_of_the_backward_pass(compose, context):
    g = compose(lambda x: fnp.sum(fnp.sqrt(x) * 0.0))
    error = _raises_nan(g, fnp.zeros((3, 2)))
    assert _first_line(error).startswith("multiply produced NaN")
    assert context in str(error)


def test_a_forward_nan_in_jit_under_grad_names_the_jitted_function():
    inner = fl.jit(_log_of_double)
    error = _raises_nan(fl.grad(lambda x: fnp.sum(inner(x))), fnp.array([1.0, -1.0]))
    assert _first_line(error).startswith("log produced NaN")
    assert "inside jit(_log_of_double)" in str(error)


def test_control_flow_bodies_run_again_to_name_the_primitive():
    xs = fnp.array([1.0, 2.0, -1.0])

    def scan_logs(xs):
        return fl.scan(lambda c, x: (c + fnp.log(x), c), 0.0, xs)

    def loop(x):
        return fl.while_loop(lambda v: v[0] < 3, lambda v: (v[0] + 1, fnp.sqrt(v[1] - 1.0)),
                             (0, x))

    def branch(x):
        return fl.cond(x > 0, lambda v: fnp.log(-v), lambda v: v, x)

    for fn, arg, name, where in [(scan_logs, xs, "log", "scan"),
                                 (fl.jit(scan_logs), xs, "log", "scan"),
                                 (loop, fnp.array(1.5), "sqrt", "while"),
                                 (fl.grad(fl.jit(branch)), fnp.array(2.0), "log", "cond")]:
        error = _raises_nan(fn, arg)
        assert _first_line(error).startswith(f"{name} produced NaN"), (where, str(error))
        assert f"inside the body of {where}" in str(error)
    # Run again without jit, a concrete predicate picks the branch in Python: its line shows.
    error = _raises_nan(fl.jit(branch), fnp.array(2.0))
    assert "lambda v: fnp.log(-v)" in str(error)


# --------------------------------------------------------------------------------------
# tap
# --------------------------------------------------------------------------------------
def test_tap_eagerly_calls_fn_at_once_and_returns_x_itself():
    seen = []
    x = fnp.arange(3.0)
    assert fl.debug.tap(x, seen.append) is x
    assert len(seen) == 1 and seen[0] is not None
    np.testing.assert_array_equal(seen[0], [0.0, 1.0, 2.0])
    tree = {"a": x, "b": (fnp.ones(2), 3.0)}
    assert fl.debug.tap(tree, seen.append) is tree
    assert set(seen[1]) == {"a", "b"} and isinstance(seen[1]["b"][1], fl.Array)
    assert fl.debug.tap(x, lambda v: "ignored") is x


def test_tap_rejects_a_non_callable():
    with pytest.raises(TypeError, match=r"fl.debug.tap\(x, fn\): fn must be callable, got int"):
        fl.debug.tap(fnp.ones(2), 3)


def test_tap_inside_jit_runs_each_call_and_is_never_removed():
    seen = []

    @fl.jit
    def f(x):
        fl.debug.tap(x * 2.0, seen.append)  # its result unused: still kept
        return x + 1.0

    f(fnp.ones(2))
    f(fnp.zeros(2))
    assert f.trace_count == 1
    assert [np.asarray(s).tolist() for s in seen] == [[2.0, 2.0], [0.0, 0.0]]
    assert all(type(s) is fl.Array for s in seen)
    assert "tap" in [e.prim.name for e in f.lower(fnp.ones(2)).graph.eqns]


def test_values_tapped_inside_jit_keep_their_values():
    # The jit writes results into dying buffers; a tapped value must never be one.
    seen = []

    @fl.jit
    def f(x):
        h = fl.debug.tap(fnp.exp(x), seen.append)
        return fnp.sin(h * 2.0 + 1.0) * 3.0

    f(fnp.ones(1 << 14))
    np.testing.assert_allclose(seen[0], np.full(1 << 14, np.e), rtol=1e-6)


def test_tap_under_vmap_sees_the_whole_batch_once():
    seen = []

    def f(x, w):
        return fnp.sum(fl.debug.tap({"x": x, "w": w}, seen.append)["x"] * w)

    out = fl.vmap(f, in_axes=(1, None))(fnp.arange(6.0).reshape(2, 3), fnp.ones(2))
    np.testing.assert_allclose(out, [3.0, 5.0, 7.0])
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0]["x"], [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]])
    assert seen[0]["w"].shape == (3, 2)  # an unmapped leaf, broadcast along the batch
    seen.clear()
    fl.vmap(fl.vmap(lambda v: fl.debug.tap(v, seen.append)))(fnp.ones((4, 3)))
    assert [s.shape for s in seen] == [(4, 3)]


def test_tap_under_grad_sees_the_forward_value_and_is_the_identity():
    seen = []
    g = fl.grad(lambda x: fl.debug.tap(x, seen.append) ** 2)(3.0)
    assert float(g) == 6.0
    assert type(seen[0]) is fl.Array and float(seen[0]) == 3.0
    seen.clear()
    assert float(fl.grad(fl.grad(lambda x: fl.debug.tap(x, seen.append) ** 3))(2.0)) == 12.0
    assert len(seen) == 1 and type(seen[0]) is fl.Array and float(seen[0]) == 2.0


def test_tap_is_transparent_to_jvp_and_vjp():
    def plain(x):
        return fnp.sin(x) * x

    def tapped(x):
        return fnp.sin(fl.debug.tap(x, lambda v: None)) * fl.debug.tap(x, lambda v: None)

    x, t = fnp.array([0.3, 1.2]), fnp.array([1.0, -2.0])
    for transform in (lambda f: fl.jvp(f, (x,), (t,))[1],
                      lambda f: fl.vjp(f, x)[1](t)[0],
                      lambda f: fl.hessian(lambda v: fnp.sum(f(v)))(x),
                      lambda f: fl.jit(fl.jacrev(f))(x),
                      lambda f: fl.vmap(fl.grad(lambda v: fnp.sum(f(v))))(x[:, None])):
        np.testing.assert_allclose(transform(tapped), transform(plain), rtol=1e-6)


def test_tap_under_jit_of_grad_and_jvp_sees_forward_values():
    seen = []

    def f(x):
        return fnp.sum(fnp.tanh(fl.debug.tap(x * 2.0, seen.append)))

    x = fnp.array([0.5, 1.0])
    fl.jit(fl.grad(f))(x)
    fl.jvp(f, (x,), (fnp.ones(2),))
    assert len(seen) == 2 and all(type(s) is fl.Array for s in seen)
    for s in seen:
        np.testing.assert_array_equal(s, [1.0, 2.0])


def test_tap_with_nan_checking_on():
    seen = []
    with fl.debug.nans():
        out = fl.jit(lambda x: fl.debug.tap(x, seen.append) + 1.0)(fnp.ones(2))
    np.testing.assert_array_equal(out, [2.0, 2.0])
    assert len(seen) == 1
