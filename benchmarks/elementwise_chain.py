"""An elementwise chain: ``gelu(layernorm(x))`` on 1024x1024 float32, eager NumPy vs
``fl`` eager vs ``fl.jit`` (elementwise fusion), and JAX jit / PyTorch eager if importable.

(a) forward; (b) forward + backward (the gradient of ``sum(gelu(layernorm(x)))``).
layernorm normalizes over the last axis (no scale or shift, eps 1e-5); gelu is the tanh
approximation. The NumPy baseline is the same math written by hand with NumPy ufuncs, the
backward derived by hand. ``fl.jit (no fusion)`` shows what fusion itself buys.
Target: jitted forward + backward >= 2x faster than eager NumPy.

Measured 2026-11-22 on the 2-vCPU EPYC, other jobs running (load 1.3-2), ratios of time vs
NumPy by hand, the code before row-chunk clusters and after, run back to back:

| | before, 1 thread | after, 1 thread | before, 2 threads | after, 2 threads |
|---|---|---|---|---|
| forward, fl.jit | 0.89x | 0.80x | 0.96x | 0.72x |
| forward + backward, fl.jit | 1.10x | 0.87x | 1.12x | 0.88x |
| forward + backward, no fusion | 1.44x | 1.14x | 1.41x | 0.98x |
| forward + backward, jax.jit | 0.40x | 0.42x | 0.32x | 0.37x |

Before, the mean and variance split the program into several loops, and the backward had
full-size negations and broadcasts ("no fusion" after: those passes plus the codegen's
``out=`` reuse of dying buffers). After, the whole forward is one loop over row chunks
(the row sums sit inside it) and so is forward + backward (4 row sums, 51 ops): x is read
once and the result written once; with 2 threads each loop splits its rows between them
(no gain here: the other core was busy). Target missed: on this machine a 4 MiB array
stays in L3, which streams nearly as fast as L2 (a one-input ufunc is no faster chunked),
so a chunk loop saves allocations and some two-input traffic only; the rest is op count
(the jitted backward has ~32 full-size ops where the hand-derived one has ~25) at
~0.1-0.2 ns per element each, and a column broadcast ((n, 1) operand) costs 2x a plain op.

2026-12-06, same machine type (AMD EPYC, AVX2, no AVX-512), idle, 1 thread: fl.jit 0.95x
for forward + backward; ``numpy chunked by hand`` (the fused loop written by hand with the
algebra simplified: 27 array passes, not 36) 0.71-0.87x over several runs; jax.jit 0.18-0.22x.
So no program of NumPy ufunc calls reaches the 2x target here: ``np.tanh`` on float32 runs
at 2.7 ns per element (this NumPy's AVX2 build has no vector tanh; ``np.exp`` is 1.7 ns),
which is 28% of the NumPy baseline by itself, and a plain ufunc pass costs 0.11-0.2 ns per
element even in L2. Two threads do not help either: the two vCPUs behave like one core's
hyperthreads (two threads of ``np.add`` on separate 256 KiB arrays: 1.03x the throughput of
one, of ``np.tanh``: 1.57x). XLA wins by compiling one vectorized loop with its own tanh.

Run: ``python -m benchmarks.elementwise_chain [--threads N] [--json] [--quick]``
"""

from benchmarks import _timing

ARGS = _timing.setup("elementwise_chain", description=__doc__)

import numpy as np  # noqa: E402

import functorch_lite as fl  # noqa: E402
import functorch_lite.numpy as fnp  # noqa: E402
from functorch_lite.jit import fusion  # noqa: E402

SHAPE = (1024, 1024)
EPS = 1e-5
K = 0.7978845608028654  # sqrt(2 / pi)
A = 0.044715


# --------------------------------------------------------------------------------------
# The function, written once with fnp (fl eager, fl.jit) and once with NumPy
# --------------------------------------------------------------------------------------
def layernorm_gelu(x, xnp=fnp):
    m = xnp.mean(x, axis=-1, keepdims=True)
    c = x - m
    n = c / xnp.sqrt(xnp.mean(c * c, axis=-1, keepdims=True) + EPS)
    return 0.5 * n * (1 + xnp.tanh(K * (n + A * n * n * n)))


def loss(x):
    return fnp.sum(layernorm_gelu(x))


def numpy_forward(x):
    return layernorm_gelu(x, np)


def numpy_grad(x):
    """d sum(gelu(layernorm(x))) / dx by hand."""
    m = x.mean(axis=-1, keepdims=True)
    c = x - m
    r = 1 / np.sqrt((c * c).mean(axis=-1, keepdims=True) + EPS)
    n = c * r
    t = np.tanh(K * (n + A * n * n * n))
    g = 0.5 * (1 + t) + 0.5 * n * (1 - t * t) * K * (1 + 3 * A * n * n)   # dy/dn
    return r * (g - g.mean(axis=-1, keepdims=True) - n * (g * n).mean(axis=-1, keepdims=True))


def numpy_chunked_grad(rows=128):
    """The gradient as the fastest NumPy program we could write by hand: the same loop over
    row chunks that fusion generates, but with the algebra simplified by hand (constants
    folded and reassociated, 27 array passes where the jitted program has 36): a floor
    for any program made of NumPy ufunc calls. Returns ``grad(x)``."""
    out = np.empty(SHAPE, np.float32)
    n, p, t, g, w = (np.empty((rows, SHAPE[1]), np.float32) for _ in range(5))
    s, r, a, b = (np.empty((rows, 1), np.float32) for _ in range(4))
    inv = np.float32(1 / SHAPE[1])

    def grad(x, n=n, p=p, t=t, g=g, w=w, s=s, r=r, a=a, b=b):  # in-place ops on locals
        for i in range(0, SHAPE[0], rows):
            xc, o = x[i:i + rows], out[i:i + rows]
            np.sum(xc, axis=1, keepdims=True, out=s)
            s *= -inv
            np.add(xc, s, out=n)                        # c = x - mean
            np.multiply(n, n, out=p)
            np.sum(p, axis=1, keepdims=True, out=r)
            r *= inv
            r += EPS
            np.sqrt(r, out=r)
            np.divide(1, r, out=r)                      # r = 1 / std
            n *= r                                      # n = c r
            np.multiply(n, n, out=p)
            np.multiply(p, K * A, out=t)
            t += K
            t *= n
            np.tanh(t, out=t)                           # t = tanh(K (n + A n^3))
            np.multiply(p, 1.5 * K * A, out=w)
            w += 0.5 * K
            np.multiply(t, t, out=g)
            np.subtract(1, g, out=g)
            w *= g
            w *= n
            np.multiply(t, 0.5, out=g)
            g += 0.5
            g += w                                      # g = dy/dn
            np.sum(g, axis=1, keepdims=True, out=a)
            np.multiply(g, n, out=w)
            np.sum(w, axis=1, keepdims=True, out=b)
            a *= inv
            b *= inv
            np.multiply(n, b, out=w)
            g -= w
            g -= a
            np.multiply(g, r, out=o)                    # r (g - mean g - n mean(g n))
        return out
    return grad


def _unfused(fun):
    """``fl.jit(fun)`` compiled (on its first call, made here) with fusion turned off."""
    jitted = fl.jit(fun)

    def compile_now(x):
        old, fusion.ENABLED = fusion.ENABLED, False
        try:
            jitted(x)
        finally:
            fusion.ENABLED = old
        return jitted
    return compile_now


def _optional_candidates(x, forward):
    """JAX jit and PyTorch eager, when installed."""
    cands = {}
    try:
        import jax
        import jax.numpy as jnp

        xj = jnp.asarray(x)
        f = jax.jit(lambda v: layernorm_gelu(v, jnp)) if forward else \
            jax.jit(jax.grad(lambda v: jnp.sum(layernorm_gelu(v, jnp))))
        f(xj).block_until_ready()
        cands["jax.jit"] = lambda: f(xj).block_until_ready()
    except ImportError:
        pass
    try:
        import torch

        _timing.torch_threads(torch, ARGS.threads)
        xt = torch.from_numpy(x)
        if forward:
            def torch_fwd():
                with torch.no_grad():
                    return layernorm_gelu(xt, torch)
            cands["torch eager"] = torch_fwd
        else:
            def torch_grad():
                v = xt.detach().requires_grad_(True)
                torch.sum(layernorm_gelu(v, torch)).backward()
                return v.grad
            cands["torch eager"] = torch_grad
    except ImportError:
        pass
    return cands


def candidates(forward):
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    x_fl = fnp.asarray(x)
    fun, ref = (layernorm_gelu, numpy_forward) if forward else (fl.grad(loss), numpy_grad)
    jitted, unfused = fl.jit(fun), _unfused(fun)(x_fl)
    cands = {"numpy (by hand)": lambda: ref(x), "fl eager": lambda: fun(x_fl),
             "fl.jit": lambda: jitted(x_fl), "fl.jit (no fusion)": lambda: unfused(x_fl)}
    if not forward:
        chunked = numpy_chunked_grad()
        cands["numpy chunked by hand"] = lambda: chunked(x)
    cands.update(_optional_candidates(x, forward))
    want = ref(x)
    for name, f in cands.items():
        np.testing.assert_allclose(np.asarray(f()), want, rtol=1e-4, atol=1e-5, err_msg=name)
    return cands, jitted, x_fl


def main():
    _timing.print_header(ARGS, "elementwise chain: gelu(layernorm(x)), 1024x1024 float32")
    tables = {}
    for forward, title in ((True, "(a) forward"), (False, "(b) forward + backward")):
        cands, jitted, x = candidates(forward)
        res = _timing.compare(cands, baseline="numpy (by hand)", batch_ms=40.0)
        _timing.print_table(title, res, baseline="numpy (by hand)")
        graph = jitted.lower(x).graph
        fused = [e.params["n"] for e in graph.eqns if e.prim.name == "fused_elementwise"]
        print(f"  the jitted function: {len(graph.eqns)} equations, fused clusters of "
              f"{fused} ops, {fusion.THREADS} thread(s) per fused loop")
        tables[title] = res
    _timing.save_json(ARGS, tables)


if __name__ == "__main__":
    main()
