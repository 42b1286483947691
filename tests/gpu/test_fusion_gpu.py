"""Generated CUDA kernels for fused clusters (functorch_lite/jit/fusion_gpu.py) on a real GPU.

Every op the kernels can hold compiles and matches eager CuPy, special values included;
whole programs (gelu of layernorm, a where/compare chain, forward and backward) match
eager CuPy and NumPy. Skipped, with the reason, where CuPy is not installed or CUDA sees
no GPU. tests/test_fusion_gpu.py checks the same translation without CUDA.
"""

import numpy as np
import pytest
from workloads import gelu, layernorm, with_special_values

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import core
from functorch_lite.core import bind
from functorch_lite.jit import fusion_gpu

cupy = pytest.importorskip("cupy", reason="CuPy is not installed; the GPU tests need CuPy "
                                          "and a CUDA GPU (pip install cupy-cuda12x)")
if len(fl.devices()) < 2:
    pytest.skip("CuPy is installed but CUDA sees no GPU", allow_module_level=True)

# A fused kernel may contract a * b + c into one FMA and its math functions may round
# differently from CuPy's separate launches: equal up to a few units in the last place.
TOL = {np.float16: 2e-3, np.float32: 2e-5, np.float64: 1e-12}


def _host(tree):
    return [np.asarray(leaf) for leaf in fl.tree.leaves(tree)]


def _assert_close(got, want, dtype):
    for g, w in zip(_host(got), _host(want), strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        if w.dtype == bool:
            np.testing.assert_array_equal(g, w)
        else:
            tol = TOL[w.dtype.type]
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol, equal_nan=True)


def _kernel_calls(jitted, *args):
    source = jitted.lower(*args).source
    return source.count("= _ElementwiseKernel"), source.count("= _ReductionKernel")


# --------------------------------------------------------------------------------------
# Every op compiles and equals eager CuPy
# --------------------------------------------------------------------------------------
def _prim(emit):
    (prim,) = [p for p in core.registry.values() if p.emit == emit and p.elementwise]
    return prim, getattr(np, emit).nin


@pytest.mark.parametrize("emit", sorted(fusion_gpu.FLOAT_OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_each_float_op_compiles_and_matches_eager_cupy(gpu, to_gpu, rng, emit, dtype):
    prim, nin = _prim(emit)
    x, y = with_special_values(rng.normal(size=(64, 33)).astype(dtype) * 2,
                     rng.normal(size=(64, 33)).astype(dtype))

    def f(x, y):
        return bind(prim, *(x, y)[:nin]) * 2 * 3

    args = to_gpu((x, y))
    jitted = fl.jit(f)
    with np.errstate(all="ignore"):
        _assert_close(jitted(*args), f(*args), dtype)
    assert _kernel_calls(jitted, *args) == (1, 0)


@pytest.mark.parametrize("emit", sorted(fusion_gpu.BOOL_OPS))
def test_each_bool_op_compiles_and_matches_eager_cupy(gpu, to_gpu, rng, emit):
    prim, nin = _prim(emit)
    rule, _ = fusion_gpu.BOOL_OPS[emit]
    x, y = with_special_values(rng.normal(size=(64, 33)).astype(np.float32),
                     rng.normal(size=(64, 33)).astype(np.float32))

    def f(x, y):
        args = (x > 0.5, y < 0) if rule == "bool" else (x, y)
        return fnp.logical_not(bind(prim, *args[:nin]))

    args = to_gpu((x, y))
    jitted = fl.jit(f)
    _assert_close(jitted(*args), f(*args), np.float32)
    assert _kernel_calls(jitted, *args) == (1, 0)


# --------------------------------------------------------------------------------------
# Whole programs
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_gelu_of_layernorm_equals_eager(gpu, to_gpu, rng, dtype):
    x = rng.normal(size=(256, 512)).astype(dtype)
    f = lambda x: gelu(layernorm(x))  # noqa: E731
    jitted = fl.jit(f)
    gx = to_gpu(x)
    got = jitted(gx)
    assert got.device == gpu and isinstance(got._buf, cupy.ndarray)
    _assert_close(got, f(gx), dtype)
    if dtype != np.float16:  # NumPy's float16 sums round differently from CuPy's
        _assert_close(got, f(x), dtype)
    elementwise, reductions = _kernel_calls(jitted, gx)
    assert elementwise >= 3 and reductions >= 1
    assert "xp.tanh" not in jitted.lower(gx).source


def test_make_graph_shows_the_gpu_clusters(to_gpu, rng):
    gx = to_gpu(rng.normal(size=(64, 128)).astype(np.float32))
    assert "fused_elementwise" in str(fl.make_graph(gelu)(gx))


def test_where_compare_chain_with_integers_and_broadcasting(gpu, to_gpu, rng):
    def f(x, col, i, s):
        mask = fnp.logical_and(x > col, i != 2)
        return fnp.where(mask, fnp.exp(x) * s, -x), fnp.astype(mask, np.float32) + col

    x, col = with_special_values(rng.normal(size=(300, 257)).astype(np.float32),
                       rng.normal(size=(300, 1)).astype(np.float32))
    i = (np.arange(300 * 257, dtype=np.int32) % 4).reshape(300, 257)
    args = (*to_gpu((x, col, i)), 0.5)
    jitted = fl.jit(f)
    _assert_close(jitted(*args), f(*args), np.float32)
    _assert_close(jitted(*args), f(x, col, i, 0.5), np.float32)
    assert _kernel_calls(jitted, *args) == (1, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_and_backward_through_grad(gpu, to_gpu, rng, dtype):
    def loss(x, w):
        return fnp.sum(gelu(layernorm(x)) * w)

    x, w = rng.normal(size=(128, 256)).astype(dtype), rng.normal(size=(256,)).astype(dtype)
    gx, gw = to_gpu((x, w))
    step = fl.jit(fl.value_and_grad(loss, argnums=(0, 1)))
    got = step(gx, gw)
    _assert_close(got, fl.value_and_grad(loss, argnums=(0, 1))(gx, gw), dtype)
    _assert_close(got, fl.value_and_grad(loss, argnums=(0, 1))(x, w), dtype)
    assert _kernel_calls(step, gx, gw)[0] >= 2
    # grad of a jitted function evaluates the unfused graph: the same numbers.
    _assert_close(fl.grad(fl.jit(loss))(gx, gw), got[1][0], dtype)


def test_kernels_are_built_once_per_source(gpu, to_gpu, rng):
    f = lambda x: fnp.sin(x) * 2 + 1  # noqa: E731
    a, b = to_gpu((rng.normal(size=(10, 3)), rng.normal(size=(4, 7))))
    fl.jit(f)(a)
    built = len(fusion_gpu._kernels)
    fl.jit(f)(b)  # another shape: a new trace, the same kernel source
    assert len(fusion_gpu._kernels) == built

