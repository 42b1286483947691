"""``fl.jit`` of a training step against the same step written by hand in NumPy, and the
first-call (trace + compile) time of a long function.

(a) One SGD step (forward, backward, update) of a relu MLP with softmax cross-entropy,
    float32: 64-256-256-10 at batch 128 and 784-1024-1024-10 at batch 256.
    ``fl.jit(step)`` (grad inside the jit), and the same with the parameters donated
    (``donate_argnums=0``: the new weights are written over the old ones), against a
    careful NumPy step (in-place update) and against the same step without jit. Every
    candidate's first step is checked against the hand-written one before timing.
(b) The first call of a jitted 1,000-op elementwise function: tracing, passes, code
    generation and ``compile()`` (target < 0.5 s), with the share of each stage; beside
    it, when installed, the first call of ``jax.jit`` of the same function (tracing,
    lowering and XLA compilation).
(c) Call overhead: a jitted function of a 10-leaf dict of float32[16] arrays, against its
    compiled body called directly on the buffers; the difference is what ``fl.jit``'s
    call costs (signature check, cache lookup, wrapping and rebuilding the outputs).
    Target (the issue's case, a 10-leaf pytree argument): <= 10 us with one array out
    (the sum of the leaves); also reported with a 10-leaf dict out (one add per leaf),
    which adds the wrapping of ten results. ``jax.jit`` of the same functions beside
    them, when installed (their whole call, dispatch included).

Run: ``python -m benchmarks.jit_step [--threads N] [--json] [--quick]``
"""

from benchmarks import _timing

ARGS = _timing.setup("jit_step", description=__doc__)

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import functorch_lite as fl  # noqa: E402
import functorch_lite.numpy as fnp  # noqa: E402
from benchmarks import _mlp  # noqa: E402
from functorch_lite.jit import codegen, passes, staging  # noqa: E402

LR = 0.1
MODELS = (((64, 256, 256, 10), 128), ((784, 1024, 1024, 10), 256))


# --------------------------------------------------------------------------------------
# (a) SGD step
# --------------------------------------------------------------------------------------
def mlp_data(sizes, batch):
    return _mlp.mlp_data(sizes, batch)


def mlp_loss(params, x, onehot):
    w1, b1, w2, b2, w3, b3 = params
    h = fl.nn.relu(x @ w1 + b1)
    h = fl.nn.relu(h @ w2 + b2)
    z = h @ w3 + b3
    top = fl.stop_gradient(fnp.max(z, axis=1, keepdims=True))
    logp = z - (top + fnp.log(fnp.sum(fnp.exp(z - top), axis=1, keepdims=True)))
    return -fnp.sum(onehot * logp) / x.shape[0]


def sgd_step(params, x, onehot):
    grads = fl.grad(mlp_loss)(params, x, onehot)
    return [p - LR * g for p, g in zip(params, grads, strict=True)]


def sgd_step_numpy(params, x, onehot):
    return _mlp.sgd_step_numpy(params, x, onehot, LR)


def step_candidates(sizes, batch):
    params0, x, onehot = mlp_data(sizes, batch)
    np_params = [p.copy() for p in params0]
    x_fl, onehot_fl = fnp.asarray(x), fnp.asarray(onehot)
    jitted = fl.jit(sgd_step)
    donating = fl.jit(sgd_step, donate_argnums=0)
    # Donated parameters must be the Arrays' own buffers (not params0's memory).
    state = {"fl.jit": [fnp.asarray(p) for p in params0],
             "fl.jit donate": [fnp.asarray(p.copy()) for p in params0],
             "fl eager": [fnp.asarray(p) for p in params0]}

    def jit_step():
        state["fl.jit"] = jitted(state["fl.jit"], x_fl, onehot_fl)

    def donating_step():
        state["fl.jit donate"] = donating(state["fl.jit donate"], x_fl, onehot_fl)

    def eager_step():
        state["fl eager"] = sgd_step(state["fl eager"], x_fl, onehot_fl)

    cands = {"numpy (by hand)": lambda: sgd_step_numpy(np_params, x, onehot),
             "fl.jit": jit_step, "fl.jit donate": donating_step, "fl eager": eager_step}
    for step in cands.values():
        step()
    for name in ("fl.jit", "fl.jit donate", "fl eager"):
        for got, want in zip(state[name], np_params, strict=True):
            np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-6,
                                       err_msg=name)
    return cands, jitted, (state["fl.jit"], x_fl, onehot_fl)


# --------------------------------------------------------------------------------------
# (b) first call of a 1,000-op function
# --------------------------------------------------------------------------------------
def thousand_ops(x, m=fnp):
    for i in range(250):
        x = m.sin(x) * 1.01 + m.cos(x) * (i % 3 + 1)
    return x


def first_call_times(repeats):
    x = fnp.ones(16)
    totals, stages = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fl.jit(thousand_ops)(x)  # a new jit each time: trace, optimize, generate, compile
        totals.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        graph = staging.trace_to_graph(lambda v: [thousand_ops(v)], [x.aval], name="f")[0]
        t1 = time.perf_counter()
        graph = passes.optimize(graph)
        t2 = time.perf_counter()
        codegen.compile_graph(graph, np, "f")
        t3 = time.perf_counter()
        stages.append((t1 - t0, t2 - t1, t3 - t2))
    return statistics.median(totals), [statistics.median(s) for s in zip(*stages)], len(graph)


def jax_first_call_times(repeats):
    """``(total, trace + lower, XLA compile)`` medians in seconds for ``jax.jit`` of the
    same function, or None without JAX. Each repeat jits a new closure, so JAX's caches
    (keyed on the function) do not hit."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as e:
        print(f"  (skipping jax: {e})")
        return None
    x = jnp.ones(16, jnp.float32)
    jax.jit(jnp.sin)(x).block_until_ready()  # JAX's own one-time start-up is not counted
    totals, stages = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.jit(lambda v: thousand_ops(v, jnp))(x).block_until_ready()
        totals.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lowered = jax.jit(lambda v: thousand_ops(v, jnp)).lower(x)
        t1 = time.perf_counter()
        lowered.compile()
        stages.append((t1 - t0, time.perf_counter() - t1))
    return statistics.median(totals), *[statistics.median(s) for s in zip(*stages)]


# --------------------------------------------------------------------------------------
# (c) call overhead
# --------------------------------------------------------------------------------------
def add_one(params):
    return {name: p + 1.0 for name, p in params.items()}


def sum_leaves(params):
    return sum(params.values())


def call_candidates(fun):
    params = {f"w{i}": fnp.ones(16) for i in range(10)}
    jitted = fl.jit(fun)
    jitted(params)
    entry, = jitted._array_cache.values()  # the compiled specialization this call uses
    bufs = [p._buf for p in fl.tree.leaves(params)]
    cands = {"compiled body": lambda: entry.fn(*bufs), "fl.jit call": lambda: jitted(params)}
    try:
        import jax
        import jax.numpy as jnp

        jax_params = {name: jnp.asarray(p) for name, p in params.items()}
        jax_jitted = jax.jit(fun)
        jax.block_until_ready(jax_jitted(jax_params))
        cands["jax.jit call"] = lambda: jax.block_until_ready(jax_jitted(jax_params))
    except ImportError:
        pass
    return cands


# --------------------------------------------------------------------------------------
def main():
    _timing.print_header(ARGS, "jit: SGD step vs NumPy by hand; first-call time; call overhead")
    tables, extra = {}, {}
    for sizes, batch in MODELS:
        title = f"(a) SGD step, MLP {'-'.join(map(str, sizes))}, batch {batch}, float32"
        cands, jitted, args = step_candidates(sizes, batch)
        res = _timing.compare(cands, baseline="numpy (by hand)", batch_ms=40.0)
        _timing.print_table(title, res, baseline="numpy (by hand)")
        graph = jitted.lower(*args).graph
        print(f"  the jitted step: {len(graph.eqns)} equations, traced "
              f"{jitted.trace_count} time(s)")
        tables[title] = res
    total, (trace, optimize, generate), n = first_call_times(3 if ARGS.quick else 7)
    status = "ok  " if total < 0.5 else "MISS"
    print(f"\n(b) first call of a jitted 1,000-op function ({n} equations after the passes)")
    print(f"  {status} {total * 1e3:.0f} ms (target < 500 ms): trace {trace * 1e3:.0f} ms, "
          f"passes {optimize * 1e3:.0f} ms, codegen + compile {generate * 1e3:.0f} ms")
    extra["first_call_s"] = {"total": total, "trace": trace, "passes": optimize,
                             "codegen": generate, "equations": n}
    jax_times = jax_first_call_times(3 if ARGS.quick else 7)
    if jax_times:
        jax_total, jax_lower, jax_compile = jax_times
        print(f"  jax.jit, same function: {jax_total * 1e3:.0f} ms (trace + lower "
              f"{jax_lower * 1e3:.0f} ms, XLA compile {jax_compile * 1e3:.0f} ms)")
        extra["jax_first_call_s"] = {"total": jax_total, "trace_and_lower": jax_lower,
                                     "compile": jax_compile}
    extra["call_overhead_us"] = {}
    for fun, title, target in (
            (sum_leaves, "(c) call overhead, 10-leaf dict argument, one array out", 10.0),
            (add_one, "(c) call overhead, 10-leaf dict in and out", None)):
        res = _timing.compare(call_candidates(fun), baseline="compiled body")
        _timing.print_table(title, res, baseline="compiled body")
        overhead = _timing.paired_difference(res["fl.jit call"], res["compiled body"]) / 1e3
        status = "    " if target is None else "ok  " if overhead <= target else "MISS"
        print(f"  {status} fl.jit's call costs {overhead:.1f} us over the compiled body"
              + ("" if target is None else f" (target <= {target:g} us)"))
        tables[title] = res
        extra["call_overhead_us"][fun.__name__] = overhead
    _timing.save_json(ARGS, tables, extra)


if __name__ == "__main__":
    main()
