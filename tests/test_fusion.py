"""Elementwise fusion in the jit (functorch_lite/jit/fusion.py).

Fused programs must compute what the unfused program and eager mode compute. Arrays are
(512, 257), twice fusion's size threshold, with 255 rows per chunk, so each loop runs two
full chunks and a short last one.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from workloads import gelu, layernorm

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite.jit import fusion
from functorch_lite.jit.graph import typecheck
from functorch_lite.jit.staging import eval_graph

SHAPE = (512, 257)
assert SHAPE[0] * SHAPE[1] >= fusion.MIN_SIZE


def _rand(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _fused_nodes(graph):
    return [e for e in graph.eqns if e.prim.name == "fused_elementwise"]


def _without_fusion(fun, *args):
    """``fun(*args)`` jitted with fusion turned off."""
    old, fusion.ENABLED = fusion.ENABLED, False
    try:
        return fl.jit(fun)(*args)
    finally:
        fusion.ENABLED = old


def _assert_close(got, want, dtype, scale=1.0):
    """Equal up to rounding; ``scale``: the size of the terms a result sums, for the
    absolute tolerance of sums added in another order (a column sum over chunks)."""
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for g, w in zip(fl.tree.leaves(got), fl.tree.leaves(want)):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol,
                                   atol=rtol * scale, equal_nan=True)


# --------------------------------------------------------------------------------------
# Random chains
# --------------------------------------------------------------------------------------
_UNARY = [fnp.tanh, fnp.sin, fnp.negative, fnp.abs, lambda x: fnp.exp(-x * x),
          # reductions over the rows in the middle of a chain, read back as columns
          lambda x: x - fnp.mean(x, axis=-1, keepdims=True),
          lambda x: x / fnp.max(fnp.abs(x) + 1.0, axis=-1, keepdims=True),
          # not fused: clusters on both sides of it must not merge into a cycle
          lambda x: fnp.cumsum(x, axis=-1) * 0.01]
_BINARY = [fnp.add, fnp.subtract, fnp.multiply, fnp.maximum,
           lambda x, y: fnp.where(x > y, x, y * 0.5)]
# Operands broadcast against SHAPE: full, a row, a column, leading-1, 0-d, Python scalar.
_SIDE_SHAPES = [SHAPE, (SHAPE[1],), (SHAPE[0], 1), (1, SHAPE[1]), ()]


@st.composite
def _chains(draw):
    """A program: a list of (op kind, op index, operand indices) over a growing pool whose
    first entries are the inputs; ``-1`` as an operand is the literal 1.5. The first
    operand is always a full-shape value (input 0 or an earlier result), so every result
    has SHAPE."""
    steps = []
    n_values = len(_SIDE_SHAPES)

    def full_value():
        i = draw(st.integers(len(_SIDE_SHAPES) - 1, n_values - 1))
        return 0 if i == len(_SIDE_SHAPES) - 1 else i

    for _ in range(draw(st.integers(3, 10))):
        if draw(st.booleans()):
            steps.append(("u", draw(st.integers(0, len(_UNARY) - 1)), (full_value(),)))
        else:
            a, b = full_value(), draw(st.integers(-1, n_values - 1))
            steps.append(("b", draw(st.integers(0, len(_BINARY) - 1)), (a, b)))
        n_values += 1
    outputs = draw(st.lists(st.integers(len(_SIDE_SHAPES), n_values - 1), min_size=1,
                            max_size=3, unique=True))
    return steps, outputs


def _program(steps, outputs):
    def f(*inputs):
        pool = [inputs[0] + 0.0 * inputs[1]] + list(inputs[1:])  # pool[0] has SHAPE
        for kind, op, operands in steps:
            args = [1.5 if i == -1 else pool[i] for i in operands]
            pool.append(_UNARY[op](*args) if kind == "u" else _BINARY[op](*args))
        # Reductions after the chain: row sums, and a max and column sums accumulated
        # over the chunks (the max sizes the column sums' rounding).
        return [pool[i] for i in outputs] + [fnp.sum(pool[-1], axis=-1),
                                             fnp.max(fnp.abs(pool[-1])),
                                             fnp.sum(pool[-1], axis=0)]
    return f


@settings(max_examples=40, deadline=None, derandomize=True)
@given(_chains(), st.sampled_from([np.float32, np.float64]))
def test_random_chains_match_unfused_and_eager(chain, dtype):
    f = _program(*chain)
    args = [_rand(s, dtype, seed=i) for i, s in enumerate(_SIDE_SHAPES)]
    typecheck(fl.make_graph(f)(*args))
    got = fl.jit(f)(*args)
    for want in (_without_fusion(f, *args), f(*[fnp.asarray(a) for a in args])):
        _assert_close(got[:-1], want[:-1], dtype)
        terms = max(1.0, float(np.asarray(want[-2])))
        _assert_close(got[-1], want[-1], dtype, scale=terms * SHAPE[0] ** 0.5)


# --------------------------------------------------------------------------------------
# What gets fused
# --------------------------------------------------------------------------------------
def test_a_chain_is_one_node_in_make_graph():
    x = _rand(SHAPE)
    graph = fl.make_graph(gelu)(x)
    typecheck(graph)
    assert "fused_elementwise[n=9] a" in str(graph)
    assert len(graph.eqns) == 1
    np.testing.assert_array_equal(fl.jit(gelu)(x), _without_fusion(gelu, x))


def test_lower_shows_the_fused_graph_and_the_chunk_loop():
    lowered = fl.jit(gelu).lower(_rand(SHAPE))
    assert "fused_elementwise" in str(lowered)
    assert "for " in lowered.source and "out=" in lowered.source
    assert "_aligned_empty" in lowered.source


def test_small_arrays_and_short_chains_are_not_fused():
    small = _rand((100, 100))
    assert not _fused_nodes(fl.make_graph(gelu)(small))
    assert "for " not in fl.jit(gelu).lower(small).source
    two_ops = fl.make_graph(lambda x: fnp.tanh(x) * 2)(_rand(SHAPE))
    assert not _fused_nodes(two_ops)


def test_disabled_fusion_leaves_the_graph_alone(monkeypatch):
    monkeypatch.setattr(fusion, "ENABLED", False)
    assert not _fused_nodes(fl.make_graph(gelu)(_rand(SHAPE)))
    assert "for " not in fl.jit(gelu).lower(_rand(SHAPE)).source


def test_aligned_buffers():
    for shape in [(3, 5), (127, 257)]:
        for dtype in [np.float32, np.float64, np.bool_]:
            buf = fusion.aligned_empty(shape, dtype)
            assert buf.shape == shape and buf.dtype == dtype and buf.flags.c_contiguous
            assert buf.ctypes.data % 64 == 0


# --------------------------------------------------------------------------------------
# Outputs, intermediates, broadcasting, dtypes
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multiple_outputs_and_intermediates_used_outside(dtype):
    def f(x, y):
        a = fnp.tanh(x) * y
        b = fnp.exp(-a * a)
        c = b + a * 3.0
        return c, b, fnp.sum(a, axis=0)   # a is read by a reduction: a cluster output

    x, y = _rand(SHAPE, dtype), _rand(SHAPE, dtype, seed=1)
    graph = fl.make_graph(f)(x, y)
    (node,) = _fused_nodes(graph)
    assert len(node.outputs) == 3
    got = fl.jit(f)(x, y)
    _assert_close(got, _without_fusion(f, x, y), dtype)
    _assert_close(got, f(fnp.asarray(x), fnp.asarray(y)), dtype)


def test_a_path_through_an_outside_op_splits_the_cluster():
    # The matmul reads a cluster value and the later ops read the matmul: one cluster
    # holding both sides would be an input and a consumer of the matmul (a cycle).
    w = _rand((SHAPE[1], SHAPE[1]), seed=1) / 16

    def f(x):
        h = fnp.tanh(x) * 0.5 + x
        t = h @ w
        return fnp.exp(-t * t) + h * 2.0 - x

    x = _rand(SHAPE)
    graph = fl.make_graph(f)(x)
    typecheck(graph)
    assert len(_fused_nodes(graph)) == 2
    _assert_close(fl.jit(f)(x), _without_fusion(f, x), np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sums_sit_anywhere_and_a_column_sum_is_accumulated(dtype):
    def f(x):
        c = fnp.tanh(x) - 0.5
        s = fnp.sum(c * c, axis=-1)   # the same sum, kept as a column below (CSE)
        return s, fnp.sum(c * x, axis=0), fnp.exp(-c) * fnp.sum(c * c, -1, keepdims=True)

    x = _rand(SHAPE, dtype)
    graph = fl.make_graph(f)(x)
    (node,) = _fused_nodes(graph)
    names = [e.prim.name for e in node.subgraph.eqns]
    assert names.count("reduce_sum") == 2
    # Out: the row sums, the accumulated column sums and the last product.
    assert sorted(v.aval.shape for v in node.outputs) == sorted([(SHAPE[0],), SHAPE, (SHAPE[1],)])
    got = fl.jit(f)(x)
    unfused = _without_fusion(f, x)
    np.testing.assert_array_equal(got[0], unfused[0])  # a chunk's row sums: the same bits
    np.testing.assert_array_equal(got[2], unfused[2])
    _assert_close(got, unfused, dtype)   # the column sums, summed chunk by chunk
    _assert_close(got, f(fnp.asarray(x)), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layernorm_gelu_is_one_loop_with_the_unfused_bits(dtype):
    x = _rand(SHAPE, dtype)
    graph = fl.make_graph(_layer)(x)
    typecheck(graph)
    (node,) = graph.eqns   # x is read once, the result written once
    assert node.prim.name == "fused_elementwise" and len(node.inputs) == 1
    assert [e.prim.name for e in node.subgraph.eqns].count("reduce_sum") == 2
    np.testing.assert_array_equal(fl.jit(_layer)(x), _without_fusion(_layer, x))
    _assert_close(fl.jit(_layer)(x), _layer(fnp.asarray(x)), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layernorm_backward_with_scale_and_shift(dtype):
    # The gradients of gamma and beta sum over the rows: accumulated over the chunks.
    def loss(x, gamma, beta, w):
        return fnp.sum(gelu(_layer(x) * gamma + beta) * w)

    x, w = _rand(SHAPE, dtype), _rand(SHAPE, dtype, seed=1)
    gamma, beta = _rand((SHAPE[1],), dtype, seed=2), _rand((SHAPE[1],), dtype, seed=3)
    grad = fl.grad(loss, argnums=(0, 1, 2))
    graph = fl.make_graph(grad)(x, gamma, beta, w)
    typecheck(graph)
    fused = _fused_nodes(graph)
    assert len(fused) == 1 and graph.eqns == fused
    accumulated = [e for e in fused[0].subgraph.eqns
                   if e.prim.name == "reduce_sum" and 0 in e.params["axes"]]
    assert len(accumulated) == 2
    got = fl.jit(grad)(x, gamma, beta, w)
    _assert_close(got, _without_fusion(grad, x, gamma, beta, w), dtype)
    _assert_close(got, grad(x, gamma, beta, w), dtype)


def test_1d_chain_with_accumulated_sum_max_and_min():
    n = 3 * fusion.CHUNK + 1001   # four chunks, the last one short

    def f(x):
        y = fnp.tanh(x) * 2.0 + x
        return y * 0.5, fnp.sum(y), fnp.max(y * y), fnp.min(y - 1.0)

    for dtype in (np.float32, np.float64):
        x = _rand((n,), dtype)
        (node,) = _fused_nodes(fl.make_graph(f)(x))
        assert sorted(v.aval.shape for v in node.outputs) == [(), (), (), (n,)]
        got, unfused = fl.jit(f)(x), _without_fusion(f, x)
        for k in (0, 2, 3):   # elementwise, max and min: the same bits
            np.testing.assert_array_equal(got[k], unfused[k])
        assert np.asarray(got[1]).shape == () and np.asarray(got[1]).dtype == dtype
        _assert_close(got, unfused, dtype)
        _assert_close(got, f(fnp.asarray(x)), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_3d_reductions_over_trailing_axes_keepdims_and_view_outputs(dtype):
    shape = (128, 33, 40)   # 49 rows per chunk: chunks of 49, 49 and 30 rows

    def f(x, b):
        c = x - fnp.mean(x, axis=(1, 2), keepdims=True)
        m = fnp.max(c, axis=2, keepdims=True)           # (128, 33, 1)
        e = fnp.exp(c - m)
        p = e / fnp.sum(e, axis=2, keepdims=True)        # a softmax over the last axis
        s = fnp.sum(p * b, axis=1)                       # (128, 40): a middle axis
        wide = fnp.broadcast_to(m, shape)                # a broadcast view, returned
        return p, s, m, wide, fnp.sum(p * c, axis=0), fnp.reshape(e * 2.0, (128, -1))

    x, b = _rand(shape, dtype), _rand((1, 33, 40), dtype, seed=1)
    graph = fl.make_graph(f)(x, b)
    typecheck(graph)
    assert len(_fused_nodes(graph)) == 1
    got, unfused = fl.jit(f)(x, b), _without_fusion(f, x, b)
    for k in (0, 2, 3, 5):   # only trailing-axis reductions before these: the same bits
        np.testing.assert_array_equal(got[k], unfused[k])
    _assert_close(got, unfused, dtype)
    _assert_close(got, f(fnp.asarray(x), fnp.asarray(b)), dtype)


def test_different_row_widths_share_one_loop():
    # (512, 257) and (512, 514) values in one cluster: chunks sized for the wider rows.
    def f(x):
        y = fnp.tanh(x) * 0.5
        z = fnp.concatenate([y, y], axis=1) + 1.0   # concatenate is not fused
        wide = fnp.exp(-z * z) - 0.5
        return fnp.sum(wide, axis=-1, keepdims=True) * y + fnp.reshape(wide[:, :257], SHAPE)

    x = _rand(SHAPE)
    _assert_close(fl.jit(f)(x), _without_fusion(f, x), np.float32)
    _assert_close(fl.jit(f)(x), f(fnp.asarray(x)), np.float32)


def test_threads_split_the_rows(monkeypatch):
    # 8192 rows of 40: 1638 rows per chunk, 6 chunks (the last of 2 rows), 3 threads.
    def f(x):
        c = x - fnp.mean(x, axis=-1, keepdims=True)
        y = fnp.tanh(c) * 2.0 + x
        return y, fnp.sum(y * y, axis=-1), fnp.sum(y, axis=0), fnp.max(c, axis=0)

    x = _rand((8192, 40), np.float64)
    jitted = fl.jit(f)
    assert "_parallel(" in jitted.lower(x).source
    monkeypatch.setattr(fusion, "THREADS", 1)
    alone = jitted(x)
    monkeypatch.setattr(fusion, "THREADS", 3)
    split = jitted(x)
    for k in (0, 1, 3):   # rows computed by whichever thread: the same bits
        np.testing.assert_array_equal(split[k], alone[k])
    _assert_close(split, alone, np.float64)   # column sums: partial sums added in order
    _assert_close(split, f(fnp.asarray(x)), np.float64)


def test_negations_sink_and_broadcasts_fold_away_with_the_same_bits(monkeypatch):
    def f(x, y):
        s = fnp.sum(-fnp.tanh(x) * y, axis=1)     # -(sum(tanh(x) * y)): on the sums
        return (s, x + -y, fnp.exp(x) - -fnp.sin(y), -fnp.cos(x) / y,
                -fnp.abs(x) * -fnp.sqrt(fnp.abs(y)), -fnp.exp(y) - x,
                fnp.broadcast_to(fnp.reshape(s, (8, 1)), x.shape) * y)

    x, y = _rand((8, 5), np.float64), _rand((8, 5), np.float64, seed=1)
    monkeypatch.setattr(fusion, "ENABLED", False)
    graph = fl.make_graph(f)(x, y)
    typecheck(graph)
    negations = [e.outputs[0] for e in graph.eqns if e.prim.name == "negative"]
    # Left: the sum's, -(cos(x) / y) and -(exp(y) + x), each a result of the function.
    assert len(negations) == 3 and all(v in graph.outvars for v in negations)
    assert "broadcast_to" not in str(graph)
    got, want = fl.jit(f)(x, y), f(fnp.asarray(x), fnp.asarray(y))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_the_layernorm_gradient_has_no_full_size_negation_or_broadcast(monkeypatch):
    monkeypatch.setattr(fusion, "ENABLED", False)
    graph = fl.make_graph(fl.grad(_loss))(_rand(SHAPE))
    full = [e.prim.name for e in graph.eqns if e.outputs[0].aval.shape == SHAPE]
    assert "negative" not in full and "broadcast_to" not in full
    assert full.count("reshape") == 0


def test_broadcast_operands_constants_and_noncontiguous_inputs():
    row, col = _rand((SHAPE[1],), seed=1), _rand((SHAPE[0], 1), seed=2)
    lead1, zero_d = _rand((1, SHAPE[1]), seed=3), np.asarray(0.25, np.float32)
    const = _rand(SHAPE, seed=4)

    def f(x, row, col, lead1, zero_d):
        return fnp.tanh(x * row + col) * lead1 - zero_d + const * x

    x = np.ascontiguousarray(_rand((SHAPE[1], SHAPE[0]))).T   # a transposed view
    args = (x, row, col, lead1, zero_d)
    assert _fused_nodes(fl.make_graph(f)(*args))
    _assert_close(fl.jit(f)(*args), _without_fusion(f, *args), np.float32)
    _assert_close(fl.jit(f)(*args), f(*[fnp.asarray(a) for a in args]), np.float32)


def test_where_comparisons_and_casts():
    def f(x):
        mask = x > 0.1
        y = fnp.where(mask, fnp.exp(x), x * 0.5)
        wide = fnp.astype(y, np.float64) * 2.0
        return fnp.astype(wide, np.float32) + fnp.astype(mask, np.float32)

    x = _rand(SHAPE)
    assert _fused_nodes(fl.make_graph(f)(x))
    _assert_close(fl.jit(f)(x), f(fnp.asarray(x)), np.float32)


# --------------------------------------------------------------------------------------
# Transforms
# --------------------------------------------------------------------------------------
def _layer(x):
    return gelu(layernorm(x))


def _loss(x):
    return fnp.sum(_layer(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_of_jit_and_jit_of_grad(dtype):
    x = _rand(SHAPE, dtype)
    want = fl.grad(_loss)(x)
    graph = fl.make_graph(fl.grad(_loss))(x)
    assert graph.eqns == _fused_nodes(graph)   # forward and backward: one loop
    _assert_close(fl.jit(fl.grad(_loss))(x), _without_fusion(fl.grad(_loss), x), dtype)
    _assert_close(fl.jit(fl.grad(_loss))(x), want, dtype)
    _assert_close(fl.grad(fl.jit(_loss))(x), want, dtype)


def test_vmap_of_jit_and_jit_of_vmap():
    xs = _rand((2,) + SHAPE)
    want = np.stack([np.asarray(gelu(fnp.asarray(x))) for x in xs])
    _assert_close(fl.vmap(fl.jit(gelu))(xs), want, np.float32)
    assert _fused_nodes(fl.make_graph(fl.vmap(gelu))(xs))
    _assert_close(fl.jit(fl.vmap(gelu))(xs), want, np.float32)


def test_a_fused_graph_runs_in_the_interpreter_eagerly_and_under_grad():
    x = _rand(SHAPE, np.float64)
    graph = fl.make_graph(gelu)(x)
    assert _fused_nodes(graph)
    (out,) = eval_graph(graph, [fnp.asarray(x)])
    _assert_close(out, gelu(fnp.asarray(x)), np.float64)
    got = fl.grad(lambda x: fnp.sum(eval_graph(graph, [x])[0]))(x)
    _assert_close(got, fl.grad(lambda x: fnp.sum(gelu(x)))(x), np.float64)


def test_fusion_inside_a_scan_body():
    def f(x):
        return fl.scan(lambda c, _: (gelu(c) + c, None), x, None, length=3)[0]

    x = _rand(SHAPE)
    _assert_close(fl.jit(f)(x), _without_fusion(f, x), np.float32)


@pytest.mark.parametrize("env, threads", [
    ({}, 1), ({"OMP_NUM_THREADS": "3"}, 3), ({"OMP_NUM_THREADS": "4,2"}, 4),
    ({"OMP_NUM_THREADS": "auto"}, 1), ({"FL_JIT_THREADS": "2", "OMP_NUM_THREADS": "8"}, 2),
    ({"FL_JIT_THREADS": "0"}, 1)])
def test_thread_count_from_the_environment_never_fails(monkeypatch, env, threads):
    for name in ("FL_JIT_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert fusion._threads_from_environment() == threads
