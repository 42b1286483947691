"""Per-example gradients: ``vmap(grad(loss))`` against a loop, NumPy by hand and peers.

A 32-64-64-10 MLP (tanh hidden layers, softmax cross-entropy) and 256 examples; the
result is one gradient pytree per example (leading axis 256). Issue targets: vmap(grad)
>= 20x faster than a Python loop of grad calls, and within 2x of hand-written NumPy
(the same math batched by hand: per-example weight gradients as batched outer products).
Peers (jax.vmap(jax.grad) op by op and jitted, torch.func.vmap(torch.func.grad)) run when
installed. Every candidate's result is checked against the hand-written one first.

Run: ``python -m benchmarks.per_example_grads [--threads N] [--json] [--quick]``
"""

import os

from benchmarks import _timing

ARGS = _timing.setup("per_example_grads", description=__doc__)
if ARGS.threads == 1:
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import numpy as np  # noqa: E402

import functorch_lite as fl  # noqa: E402
import functorch_lite.numpy as fnp  # noqa: E402

SIZES = (32, 64, 64, 10)
N = 256


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    params = [{"w": (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32),
               "b": np.zeros(b, np.float32)} for a, b in zip(SIZES[:-1], SIZES[1:])]
    x = rng.standard_normal((N, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], N)
    return params, x, np.eye(SIZES[-1], dtype=np.float32)[y]


def loss(m, stop, params, x, y):
    """One example's loss over a NumPy-like namespace ``m`` (``stop``: stop_gradient)."""
    h = x
    for layer in params[:-1]:
        h = m.tanh(h @ layer["w"] + layer["b"])
    z = h @ params[-1]["w"] + params[-1]["b"]
    zmax = stop(m.max(z))
    return -m.sum(y * (z - zmax - m.log(m.sum(m.exp(z - zmax)))))


def numpy_by_hand(params, x, y):
    """Per-example gradients of :func:`loss` for the whole batch, written out."""
    acts = [x]
    for layer in params[:-1]:
        acts.append(np.tanh(acts[-1] @ layer["w"] + layer["b"]))
    z = acts[-1] @ params[-1]["w"] + params[-1]["b"]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    delta = p * y.sum(axis=1, keepdims=True) - y            # d loss / d z, per example
    grads = [None] * len(params)
    for i in range(len(params) - 1, -1, -1):
        grads[i] = {"w": acts[i][:, :, None] * delta[:, None, :], "b": delta}
        if i:
            delta = (delta @ params[i]["w"].T) * (1 - acts[i] ** 2)
    return grads


def candidates(params_np, x, y):
    params = fl.tree.map(fnp.asarray, params_np)
    fx, fy = fnp.asarray(x), fnp.asarray(y)
    fl_loss = lambda p, x, y: loss(fnp, fl.stop_gradient, p, x, y)
    per_example = fl.vmap(fl.grad(fl_loss), in_axes=(None, 0, 0))
    one = fl.grad(fl_loss)

    def loop():
        gs = [one(params, fx[i], fy[i]) for i in range(N)]
        return fl.tree.map(lambda *g: fnp.stack(g), *gs)

    cands = {"numpy (by hand)": lambda: numpy_by_hand(params_np, x, y),
             "fl vmap(grad)": lambda: per_example(params, fx, fy),
             "fl loop of grad": loop}
    try:
        import jax
        import jax.numpy as jnp

        jp = jax.tree_util.tree_map(jnp.asarray, params_np)
        jx, jy = jnp.asarray(x), jnp.asarray(y)
        jgrad = jax.vmap(jax.grad(lambda p, x, y: loss(jnp, jax.lax.stop_gradient, p, x, y)),
                         in_axes=(None, 0, 0))
        jitted = jax.jit(jgrad)

        def jax_eager():
            with jax.disable_jit():
                return jax.block_until_ready(jgrad(jp, jx, jy))

        cands["jax vmap(grad), no jit"] = jax_eager
        cands["jax jit(vmap(grad))"] = lambda: jax.block_until_ready(jitted(jp, jx, jy))
    except ImportError as e:
        print(f"  (skipping jax: {e})")
    try:
        import torch
        from torch.func import grad as tgrad
        from torch.func import vmap as tvmap

        _timing.torch_threads(torch, ARGS.threads)
        tp = [{k: torch.from_numpy(v.copy()) for k, v in layer.items()} for layer in params_np]
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        tfn = tvmap(tgrad(lambda p, x, y: loss(torch, lambda v: v.detach(), p, x, y)),
                    in_dims=(None, 0, 0))
        cands["torch.func vmap(grad)"] = lambda: tfn(tp, tx, ty)
    except ImportError as e:
        print(f"  (skipping torch: {e})")
    return cands


def check(cands, want):
    for name, fn in cands.items():
        got = [np.asarray(g) for g in _leaves(fn())]
        for g, w in zip(got, _leaves(want)):
            np.testing.assert_allclose(g, w, rtol=2e-3, atol=2e-5, err_msg=name)


def _leaves(grads):
    return [np.asarray(layer[k]) for layer in grads for k in ("b", "w")]


def main():
    _timing.print_header(ARGS, f"Per-example gradients, MLP {SIZES}, {N} examples")
    params, x, y = make_data()
    cands = candidates(params, x, y)
    check(cands, numpy_by_hand(params, x, y))
    res = _timing.compare(cands, baseline="numpy (by hand)", batch_ms=20.0)
    title = "per-example gradients (one call = all 256 examples)"
    _timing.print_table(title, res, baseline="numpy (by hand)")
    loop, vm = res["fl loop of grad"].median_ns, res["fl vmap(grad)"].median_ns
    print(f"  vmap(grad) speed-up over the loop: {loop / vm:.1f}x (target >= 20x)")
    _timing.save_json(ARGS, {title: res})


if __name__ == "__main__":
    main()
