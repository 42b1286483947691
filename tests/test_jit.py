"""fl.jit: caching, retrace reasons, static arguments, errors, graphs, passes, codegen,
compositions with grad/vmap, methods, debug.print and assert_max_traces."""

import collections
import re

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite.jit.graph import typecheck
from functorch_lite.jit.passes import cse, dce, fold_constants, optimize, simplify


def _f32(*shape, seed=0):
    return fnp.asarray(np.random.RandomState(seed).standard_normal(shape).astype(np.float32))


def _eqn_names(graph):
    return [e.prim.name for e in graph.eqns]


# --------------------------------------------------------------------------------------
# Values, pytrees, Python scalars
# --------------------------------------------------------------------------------------
def test_jit_matches_eager_on_pytrees_and_kwargs():
    def f(params, x, *, scale):
        h = fnp.tanh(x @ params["w"] + params["b"])
        return {"out": h * scale, "norm": fnp.sum(h * h)}, [x.shape[0]]

    params = {"w": _f32(3, 2), "b": _f32(2, seed=1)}
    x = _f32(4, 3, seed=2)
    want = f(params, x, scale=fnp.asarray(2.0))
    got = fl.jit(f)(params, x, scale=fnp.asarray(2.0))
    assert fl.tree.structure(got) == fl.tree.structure(want)
    for g, w in zip(fl.tree.leaves(got), fl.tree.leaves(want)):
        assert isinstance(g, fl.Array) and np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_python_scalars_are_weakly_typed_and_traced():
    f = fl.jit(lambda x, s: x * s + s)
    x = fnp.ones(3)
    out = f(x, 2.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [4.0, 4.0, 4.0])
    np.testing.assert_allclose(f(x, 5.0), [10.0, 10.0, 10.0])
    assert f.trace_count == 1  # a new scalar value is not a new signature
    # A result computed from Python scalars only gets the default dtype, as eagerly.
    g = fl.jit(lambda a, b: a * b)
    assert g(2.0, 3.0).dtype == (2.0 * fnp.asarray(3.0)).dtype == np.float32


def test_zero_dim_outputs_are_arrays_with_ndarray_buffers():
    out = fl.jit(lambda x: (fnp.sum(x), x[0] * 2, 1.5, x))(_f32(3))
    for o in out:
        assert type(o) is fl.Array and type(o._buf) is np.ndarray
    assert out[2].dtype == np.float32


def test_closure_over_arrays_is_a_constant():
    w = _f32(3)
    f = fl.jit(lambda x: fnp.sum(x * w))
    np.testing.assert_allclose(f(fnp.ones(3)), np.sum(np.asarray(w)), rtol=1e-6)
    graph = f.lower(fnp.ones(3)).graph
    assert len(graph.consts) == 1 and graph.consts[0] is w


def test_jit_inside_jit_is_inlined():
    inner = fl.jit(lambda x: fnp.sin(x) * 2)
    outer = fl.jit(lambda x: inner(x) + 1)
    np.testing.assert_allclose(outer(_f32(3)), np.sin(np.asarray(_f32(3))) * 2 + 1, rtol=1e-6)
    assert _eqn_names(outer.lower(_f32(3)).graph) == ["sin", "multiply", "add"]


# --------------------------------------------------------------------------------------
# Cache and retrace reasons
# --------------------------------------------------------------------------------------
def test_cache_hits_and_misses():
    f = fl.jit(lambda x: x * 2)
    f(_f32(3))
    f(_f32(3, seed=1))
    assert f.trace_count == 1
    f(_f32(4))
    assert f.trace_count == 2 and f.last_retrace_reason == "x: f32[3] -> f32[4]"
    f(_f32(3))  # back to a shape seen before: a hit
    assert f.trace_count == 2
    f(fnp.ones(3, dtype=np.float64))
    assert f.trace_count == 3 and f.last_retrace_reason == "x: f32[3] -> f64[3]"
    f(np.ones(3, np.float64))  # a raw ndarray has the same signature as an Array
    assert f.trace_count == 3
    f(1.0)
    assert f.last_retrace_reason == "x: f64[3] -> f64~[]"
    f.clear_cache()
    f(_f32(3))
    assert f.trace_count == 5


def test_retrace_reasons_name_pytree_paths_and_structure():
    f = fl.jit(lambda params, x: fnp.sum(params["w"]) * fnp.sum(x))
    f({"w": _f32(2)}, _f32(2))
    f({"w": _f32(5)}, _f32(2))
    assert f.last_retrace_reason == "params['w']: f32[2] -> f32[5]"
    f({"w": _f32(5), "extra": _f32(1)}, _f32(2))
    assert f.last_retrace_reason.startswith("argument structure: ")
    assert len(f.retrace_reasons) == 2


def test_enable_x64_is_part_of_the_key():
    f = fl.jit(lambda x: x + fnp.zeros(()))
    assert f(fnp.ones(2)).dtype == np.float32
    with fl.config.enable_x64():
        assert f(fnp.ones(2)).dtype == np.float64
    assert f.trace_count == 2 and "enable_x64" in f.last_retrace_reason


# --------------------------------------------------------------------------------------
# Static arguments
# --------------------------------------------------------------------------------------
def test_static_argnums_and_argnames():
    def power(x, n, *, mode="mul"):
        out = x
        for _ in range(n - 1):  # a Python loop over a static value
            out = out * x if mode == "mul" else out + x
        return out

    f = fl.jit(power, static_argnums=1, static_argnames="mode")
    x = fnp.asarray([2.0, 3.0])
    np.testing.assert_allclose(f(x, 3), [8.0, 27.0])
    np.testing.assert_allclose(f(x, 3), [8.0, 27.0])
    assert f.trace_count == 1
    np.testing.assert_allclose(f(x, 3, mode="add"), [6.0, 9.0])
    assert f.trace_count == 2 and f.last_retrace_reason == "static mode: None -> 'add'"
    np.testing.assert_allclose(f(x, 2), [4.0, 9.0])
    assert "static n: 3 -> 2" in f.last_retrace_reason
    np.testing.assert_allclose(f(x, n=2), [4.0, 9.0])  # static by name too
    g = fl.jit(power, static_argnums=-1)
    np.testing.assert_allclose(g(x, 2), [4.0, 9.0])


def test_unhashable_static_argument_names_the_argument():
    f = fl.jit(lambda x, sizes: x * len(sizes), static_argnums=1)
    with pytest.raises(TypeError, match=r"static argument 'sizes' has the unhashable type "
                                        r"list.*tuple instead of a list"):
        f(fnp.ones(2), [1, 2])
    np.testing.assert_allclose(f(fnp.ones(2), (1, 2)), [2.0, 2.0])


def test_non_array_argument_suggests_static():
    f = fl.jit(lambda x, name: x)
    with pytest.raises(TypeError, match=r"argument name is a str.*static_argnums"):
        f(fnp.ones(2), "relu")


# --------------------------------------------------------------------------------------
# Concretization errors
# --------------------------------------------------------------------------------------
def test_python_if_on_traced_value_names_function_line_and_fix():
    def relu_if(x):
        if fnp.sum(x) > 0:  # the line the error must show
            return x
        return -x

    with pytest.raises(fl.ConcretizationError) as info:
        fl.jit(relu_if)(fnp.ones(2))
    msg = str(info.value)
    assert "jit(relu_if)" in msg
    assert "if fnp.sum(x) > 0:  # the line the error must show" in msg
    assert re.search(r"test_jit\.py:\d+", msg)
    assert "fl.cond" in msg and "static_argnums" in msg


@pytest.mark.parametrize("convert", [float, int, lambda x: x.item(), bool])
def test_every_concretization_raises(convert):
    with pytest.raises(fl.ConcretizationError, match="jit"):
        fl.jit(lambda x: convert(x))(fnp.asarray(1.0))


def test_disable_jit_runs_python():
    f = fl.jit(lambda x: float(x) * 2)
    with fl.disable_jit():
        assert f(fnp.asarray(3.0)) == 6.0
    assert f.trace_count == 0


def test_leaked_tracer_fails_loudly():
    leaked = []

    @fl.jit
    def f(x):
        leaked.append(x)
        return x

    f(fnp.ones(2))
    with pytest.raises(fl.LeakedTracerError, match="jit"):
        fnp.sin(leaked[0])


# --------------------------------------------------------------------------------------
# Graphs and passes
# --------------------------------------------------------------------------------------
def test_make_graph_prints_like_a_jaxpr():
    graph = fl.make_graph(lambda x, y: fnp.sum(x * y, axis=0))(_f32(3, 2), _f32(3, 2))
    assert str(graph) == (
        "{ lambda a:f32[3,2] b:f32[3,2]. let\n"
        "    c:f32[3,2] = multiply a b\n"
        "    d:f32[2] = reduce_sum[axes=(0,)] c\n"
        "  in (d,) }")


def test_passes_remove_dead_and_duplicated_ops():
    def f(x, y):
        a = fnp.sin(x)
        unused = fnp.cos(y)  # noqa: F841 - dead code
        b = fnp.sin(x)       # a duplicate of a
        return a * b

    x, y = _f32(3), _f32(3, seed=1)
    raw = fl.make_graph(f, optimized=False)(x, y)
    assert _eqn_names(raw) == ["sin", "cos", "sin", "multiply"]
    assert str(fl.make_graph(f)(x, y)) == (
        "{ lambda a:f32[3] b:f32[3]. let\n"
        "    c:f32[3] = sin a\n"
        "    d:f32[3] = multiply c c\n"
        "  in (d,) }")
    np.testing.assert_allclose(fl.jit(f)(x, y), f(x, y), rtol=1e-6)


def test_simplification_of_trivial_ops():
    def f(x):
        y = (x * 1 + 0 - 0) / 1
        y = fnp.reshape(y, (2, 3))
        y = fnp.broadcast_to(y, (2, 3))
        y = fnp.transpose(fnp.transpose(y))
        y = fnp.astype(y, np.float32)
        return -(-y) ** 1

    x = _f32(2, 3)
    graph = simplify(fl.make_graph(f, optimized=False)(x))
    typecheck(graph)
    assert _eqn_names(dce(graph)) == []
    np.testing.assert_allclose(fl.jit(f)(x), x)


def test_simplification_keeps_type_changes():
    # x * 1.0 on an int array is a float array: not an identity.
    f = lambda x: x * 1.0  # noqa: E731
    graph = optimize(fl.make_graph(f, optimized=False)(fnp.arange(3)))
    assert _eqn_names(graph) == ["multiply"]
    assert fl.jit(f)(fnp.arange(3)).dtype == np.float64
    # A transpose of a transpose that is not the identity becomes one transpose.
    g = lambda x: fnp.transpose(fnp.transpose(x, (1, 2, 0)), (1, 2, 0))  # noqa: E731
    x = _f32(2, 3, 4)
    graph = fl.make_graph(g)(x)
    assert _eqn_names(graph) == ["transpose"] and graph.eqns[0].params["perm"] == (2, 0, 1)
    np.testing.assert_allclose(fl.jit(g)(x), g(x))


def test_constant_folding_and_cse():
    c = _f32(4)
    f = lambda x: x + fnp.exp(c) * 2 + fnp.exp(c) * 2  # noqa: E731
    raw = fl.make_graph(f, optimized=False)(_f32(4))
    folded = fold_constants(raw)
    typecheck(folded)
    assert _eqn_names(folded) == ["add", "add"]
    deduped = cse(raw)
    assert _eqn_names(deduped) == ["exp", "multiply", "add", "add"]
    np.testing.assert_allclose(fl.jit(f)(_f32(4)), f(_f32(4)), rtol=1e-6)


def test_big_constant_expressions_are_not_folded():
    big = fnp.ones(1 << 17)
    graph = fl.make_graph(lambda x: x + fnp.sin(big))(fnp.ones(1 << 17))
    assert _eqn_names(graph) == ["sin", "add"]


def test_generated_source_calls_the_backend():
    lowered = fl.jit(lambda x: fnp.sum(fnp.sin(x) * x)).lower(_f32(3))
    assert "xp.sin(" in lowered.source and "xp.multiply(" in lowered.source
    assert str(lowered) == str(lowered.graph) and "sin" in lowered.as_text()


def test_generated_code_frees_each_value_after_its_last_use():
    def f(x):
        a = fnp.sin(x)
        b = fnp.cos(a)      # a dies here
        c = fnp.exp(b) * x  # b dies here; x is used here for the last time
        return c, a * 0 + c

    jitted = fl.jit(f)
    x = fnp.asarray(np.linspace(0.0, 1.0, 5))
    source = jitted.lower(x).source
    assert "del " in source
    for got, want in zip(jitted(x), f(x)):
        np.testing.assert_allclose(got, want)


def test_values_before_an_inlined_custom_rule_are_still_freed():
    # Regression: emitting the inlined body of a custom_vjp function reset the caller's
    # liveness records, so nothing defined before it was ever freed.
    @fl.custom_vjp
    def g(v):
        return fnp.sin(v)

    g.defvjp(lambda v: (fnp.sin(v), v), lambda v, ct: (ct * fnp.cos(v),))

    def f(x):
        return g(fnp.exp(x) * 3.0) + 1.0

    x = fnp.asarray(np.linspace(0.0, 1.0, 5))
    lowered = fl.jit(f).lower(x)
    exp_line = next(line for line in lowered.source.splitlines() if "xp.exp(" in line)
    exp_name = exp_line.split("=")[0].strip()
    assert f"del {exp_name}" in lowered.source or f"out={exp_name}" in lowered.source
    np.testing.assert_allclose(fl.jit(f)(x), f(x), rtol=1e-6)


def test_a_thousand_ops_trace_compile_and_run():
    def many(x):
        for i in range(250):
            x = fnp.sin(x) * 1.01 + fnp.cos(x) * (i % 3)
        return x

    x = _f32(8)
    f = fl.jit(many)
    np.testing.assert_allclose(f(x), many(x), rtol=1e-5)
    assert len(f.lower(x).graph.eqns) >= 750


# --------------------------------------------------------------------------------------
# Compositions with grad and vmap
# --------------------------------------------------------------------------------------
def _loss(w, x):
    return fnp.mean(fnp.tanh(x @ w) ** 2)


def test_grad_of_jit_and_jit_of_grad():
    w, x = _f32(3, 2), _f32(5, 3, seed=1)
    want = fl.grad(_loss)(w, x)
    jitted = fl.jit(_loss)
    np.testing.assert_allclose(fl.grad(jitted)(w, x), want, rtol=1e-6)
    np.testing.assert_allclose(fl.grad(jitted)(w * 2, x), fl.grad(_loss)(w * 2, x), rtol=1e-6)
    assert jitted.trace_count == 1  # the staged graph is reused under grad
    np.testing.assert_allclose(fl.jit(fl.grad(_loss))(w, x), want, rtol=1e-6)
    np.testing.assert_allclose(fl.jit(fl.grad(jitted))(w, x), want, rtol=1e-6)


def test_vmap_and_jit_compose():
    ws, x = fnp.stack([_f32(3, 2), _f32(3, 2, seed=3)]), _f32(5, 3, seed=1)
    want = fl.vmap(fl.grad(_loss), in_axes=(0, None))(ws, x)
    np.testing.assert_allclose(fl.jit(fl.vmap(fl.grad(_loss), in_axes=(0, None)))(ws, x),
                               want, rtol=1e-6)
    np.testing.assert_allclose(fl.vmap(fl.jit(fl.grad(_loss)), in_axes=(0, None))(ws, x),
                               want, rtol=1e-6)
    np.testing.assert_allclose(fl.vmap(fl.grad(fl.jit(_loss)), in_axes=(0, None))(ws, x),
                               want, rtol=1e-6)


def test_higher_order_derivatives_through_jit():
    f = lambda x: fnp.sum(fnp.sin(x) ** 3)  # noqa: E731
    x = fnp.asarray([0.3, -1.2], dtype=np.float64)
    np.testing.assert_allclose(fl.jit(fl.hessian(f))(x), fl.hessian(f)(x), rtol=1e-10)
    np.testing.assert_allclose(fl.hessian(fl.jit(f))(x), fl.hessian(f)(x), rtol=1e-10)
    fl.debug.check_grads(fl.jit(f), (x,), order=2)


def test_jit_under_grad_closing_over_an_outer_tracer():
    def f(w):
        inner = fl.jit(lambda x: fnp.sum(x * w))  # closes over grad's tracer w
        return inner(fnp.ones(3)) * 2

    np.testing.assert_allclose(fl.grad(f)(fnp.ones(3)), [2.0, 2.0, 2.0])


def test_custom_rules_survive_jit():
    @fl.custom_vjp
    def clip_gradient(x):
        return x

    clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (fnp.clip(g, -1.0, 1.0),))
    f = lambda x: fnp.sum(5.0 * clip_gradient(x))  # noqa: E731
    x = fnp.asarray([1.0, 2.0])
    for g in (fl.grad(f), fl.jit(fl.grad(f)), fl.grad(fl.jit(f))):
        np.testing.assert_allclose(g(x), [1.0, 1.0])
    np.testing.assert_allclose(fl.jit(f)(x), 15.0)
    block = fl.checkpoint(lambda x: fnp.tanh(fnp.tanh(x)))
    h = lambda x: fnp.sum(block(x))  # noqa: E731
    np.testing.assert_allclose(fl.jit(fl.grad(h))(x), fl.grad(h)(x), rtol=1e-6)
    np.testing.assert_allclose(fl.grad(fl.jit(h))(x), fl.grad(h)(x), rtol=1e-6)
    np.testing.assert_allclose(fl.jit(h)(x), h(x), rtol=1e-6)


# --------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------
class Scaler:
    def __init__(self, factor):
        self.factor = factor

    @fl.jit
    def apply(self, x):
        return x * self.factor


def test_jitted_methods_get_one_cache_entry_per_instance():
    a, b = Scaler(2.0), Scaler(3.0)
    x = fnp.ones(2)
    np.testing.assert_allclose(a.apply(x), [2.0, 2.0])
    np.testing.assert_allclose(b.apply(x), [3.0, 3.0])
    np.testing.assert_allclose(a.apply(x), [2.0, 2.0])
    assert Scaler.apply.trace_count == 2
    assert "a different instance" in Scaler.apply.last_retrace_reason
    assert "multiply" in str(a.apply.lower(x))


def test_jitted_method_on_a_pytree_instance_traces_it():
    class Affine:
        def __init__(self, w):
            self.w = w

        @fl.jit
        def apply(self, x):
            return x * self.w

    fl.tree.register_node(Affine, lambda m: ((m.w,), None), lambda _, children: Affine(*children))
    x = fnp.ones(2)
    np.testing.assert_allclose(Affine(fnp.asarray(2.0)).apply(x), [2.0, 2.0])
    np.testing.assert_allclose(Affine(fnp.asarray(5.0)).apply(x), [5.0, 5.0])
    assert Affine.apply.trace_count == 1


# --------------------------------------------------------------------------------------
# debug.print and assert_max_traces
# --------------------------------------------------------------------------------------
def test_debug_print_eager_jit_vmap_grad(capsys):
    def f(x):
        fl.debug.print("x={} total={t}", x, t=fnp.sum(x))
        return fnp.sum(x * x)

    x = fnp.asarray([1.0, 2.0])
    f(x)
    assert capsys.readouterr().out == "x=[1. 2.] total=3.0\n"
    jitted = fl.jit(f)
    jitted(x)
    jitted(x * 2)
    assert capsys.readouterr().out == "x=[1. 2.] total=3.0\nx=[2. 4.] total=6.0\n"
    assert "debug_print" in _eqn_names(jitted.lower(x).graph)  # never removed as dead
    fl.vmap(f)(fnp.asarray([[1.0, 2.0], [3.0, 4.0]]))
    assert capsys.readouterr().out == "x=[[1. 2.]\n [3. 4.]] total=[3. 7.]\n"
    fl.grad(f)(x)
    assert capsys.readouterr().out == "x=[1. 2.] total=3.0\n"
    fl.jit(fl.grad(f))(x)
    assert capsys.readouterr().out == "x=[1. 2.] total=3.0\n"


def test_assert_max_traces_decorator_and_context_manager():
    @fl.debug.assert_max_traces(1)
    @fl.jit
    def f(x):
        return x + 1

    f(fnp.ones(2))
    f(fnp.zeros(2))
    with pytest.raises(AssertionError, match=r"jit\(f\) was traced 2 times.*f32\[2\] -> "
                                             r"f32\[3\]"):
        f(fnp.ones(3))

    @fl.jit
    @fl.debug.assert_max_traces(1)
    def g(x):
        return x * 2

    g(fnp.ones(2))
    with pytest.raises(AssertionError, match="g was traced 2 times"):
        g(fnp.ones(4))

    h = fl.jit(lambda x: x - 1)
    with fl.debug.assert_max_traces(2):
        h(fnp.ones(1))
        h(fnp.ones(2))
        with pytest.raises(AssertionError, match="traced 3 times"):
            h(fnp.ones(3))
    h(fnp.ones(4))  # outside the block: no limit


def test_fast_call_path_tells_containers_and_keywords_apart():
    """Calls with Arrays and lists/tuples of Arrays skip flattening; their cache key must
    still tell a list from a tuple, lengths apart, and a keyword call from a plain one."""
    a, b = fnp.array([1.0, 2.0]), fnp.array([3.0, 4.0])
    f = fl.jit(lambda ps, x: [p * x for p in ps] if isinstance(ps, list) else ps[0] - x)
    np.testing.assert_allclose(f([a, b], a)[1], [3.0, 8.0])
    np.testing.assert_allclose(f((a, b), b), [-2.0, -2.0])
    assert len(f([a], a)) == 1
    np.testing.assert_allclose(f([a, b], a)[0], [1.0, 4.0])
    g = fl.jit(lambda x, y=None: x if y is None else x + y)
    np.testing.assert_allclose(g(a, y=b), [4.0, 6.0])
    np.testing.assert_allclose(g(a), [1.0, 2.0])
    np.testing.assert_allclose(g(a, y=b), [4.0, 6.0])


def test_fast_call_path_on_nested_dicts_follows_flatten_order():
    """Dicts (nested in lists) take the fast path too: leaves in sorted-key order whatever
    the insertion order, one trace for both orders, and a retrace when a key or a shape
    changes."""
    a, b, c = fnp.array([1.0, 2.0]), fnp.array([10.0, 20.0]), fnp.array([5.0])
    f = fl.jit(lambda ps: {"diff": ps[0]["b"] - ps[0]["a"], "c": ps[1]["c"] * 2})
    out = f([{"b": b, "a": a}, {"c": c}])
    np.testing.assert_allclose(out["diff"], [9.0, 18.0])
    assert list(out) == ["c", "diff"]  # an output dict comes back in sorted-key order
    out = f([{"a": a, "b": b}, {"c": c}])
    np.testing.assert_allclose(out["diff"], [9.0, 18.0])
    np.testing.assert_allclose(out["c"], [10.0])
    assert f.trace_count == 1
    np.testing.assert_allclose(f([{"a": b, "b": a}, {"c": c}])["diff"], [-9.0, -18.0])
    assert f.trace_count == 1
    np.testing.assert_allclose(f([{"a": a, "b": b}, {"c": fnp.ones(3)}])["c"], [2.0] * 3)
    assert f.trace_count == 2
    g = fl.jit(lambda ps: sum(ps.values()))
    np.testing.assert_allclose(g({"x": a, "y": a}), [2.0, 4.0])
    np.testing.assert_allclose(g({"x": a, "z": a}), [2.0, 4.0])
    assert g.trace_count == 2  # other keys: another structure
    h = fl.jit(lambda p, b: (p, b[0]))  # nested output: a dict inside a tuple
    p_out, b_out = h({"a": a}, (c, a))
    assert type(p_out) is dict and list(p_out) == ["a"]
    np.testing.assert_allclose(p_out["a"], [1.0, 2.0])
    np.testing.assert_allclose(b_out, [5.0])


def test_fast_call_path_on_namedtuples_keeps_their_fields_and_registrations():
    """An optimizer-state-like namedtuple takes the fast path (flattened by field); a
    namedtuple class registered with its own flattening is left to the general path."""
    State = collections.namedtuple("State", ["count", "mu"])
    f = fl.jit(lambda s, x: State(s.count + 1.0, s.mu * x))
    s = State(fnp.array(0.0), fnp.array([1.0, 2.0]))
    out = f(s, fnp.array([3.0, 4.0]))
    assert type(out) is State
    np.testing.assert_allclose(out.count, 1.0)
    np.testing.assert_allclose(out.mu, [3.0, 8.0])
    out = f(out, fnp.array([1.0, 0.5]))
    np.testing.assert_allclose(out.mu, [3.0, 4.0])
    assert f.trace_count == 1 and len(f._array_cache) == 1

    Swapped = collections.namedtuple("Swapped", ["a", "b"])
    g = fl.jit(lambda p: p.a - p.b)
    np.testing.assert_allclose(g(Swapped(fnp.array(5.0), fnp.array(2.0))), 3.0)
    fl.tree.register_node(Swapped, lambda p: ((p.b, p.a), None),
                          lambda _, children: Swapped(children[1], children[0]))
    np.testing.assert_allclose(g(Swapped(fnp.array(5.0), fnp.array(2.0))), 3.0)
    assert g.trace_count == 2  # a new structure (the registered node), traced again


def test_fast_call_path_leaves_other_leaves_and_bad_keys_to_the_general_path():
    a = fnp.array([1.0, 2.0])
    f = fl.jit(lambda ps: ps["w"] * ps["s"])
    np.testing.assert_allclose(f({"w": a, "s": 3.0}), [3.0, 6.0])  # a Python scalar leaf
    np.testing.assert_allclose(f({"w": a, "s": 4.0}), [4.0, 8.0])
    assert f.trace_count == 1
    with pytest.raises(ValueError, match="cannot be sorted"):
        fl.jit(lambda ps: ps[1])({1: a, "b": a})


def test_a_function_named_like_a_global_of_the_generated_code_still_compiles():
    """The generated ``def`` must not rebind the names its body calls (``xp``, ``_sum``,
    ``_as0``): such a function is renamed with a trailing underscore."""
    def xp(x):
        return fnp.sin(x) + fnp.sum(x, axis=0)

    def _sum(x):
        return fnp.sum(x, axis=0) * 2

    def _as0(x):
        return fnp.sum(x) * 2

    x = fnp.asarray(np.arange(6.0).reshape(2, 3))
    for f in (xp, _sum, _as0):
        np.testing.assert_allclose(fl.jit(f)(x), f(x), rtol=1e-6)
    assert fl.jit(_sum).lower(x).source.startswith("def _sum_(v0):")
