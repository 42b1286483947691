"""Eager reverse mode: functorch_lite against hand-written NumPy and other autodiff libraries.

(a) ``grad`` of a scalar function of 10 primitive ops of a 100-element float64 vector.
    Issue targets: <= 0.8x PyTorch eager's time and <= 0.5x HIPS autograd's.
(b) One SGD step (forward, backward, update) of a 64-256-256-10 MLP with relu and softmax
    cross-entropy on a batch of 128, float32, no jit. Issue target: <= 1.3x hand-written
    NumPy (forward and backward written out by hand).

Every library computes the same math with the same ops: the log-softmax is written as
``z - (m + log(sum(exp(z - m))))`` with ``m`` the row max (gradient stopped), and each
library's own idiom is used for relu (``fl.nn.relu``, ``torch.relu``, ``jax.nn.relu``;
autograd has none: ``np.maximum``) and for the update (in place for NumPy and PyTorch, a
new pytree for the functional libraries). JAX runs op by op (no ``jit``). A library that is not
installed is skipped with a note (``pip install autograd jax jaxlib torch==2.13.0``).
Before timing, every candidate's result is checked against the hand-written NumPy one.

Run: ``python -m benchmarks.eager_grad [--threads N] [--json] [--quick]``
"""

import os

from benchmarks import _timing

ARGS = _timing.setup("eager_grad", description=__doc__)
if ARGS.threads == 1:  # XLA has its own thread pool; keep it to one thread as well
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import numpy as np  # noqa: E402  (after the thread count is fixed)

import functorch_lite as fl  # noqa: E402
import functorch_lite.numpy as fnp  # noqa: E402
from benchmarks import _mlp  # noqa: E402

LR = 0.01
MLP_SIZES = (64, 256, 256, 10)
BATCH = 128


def optional(name):
    """Import an optional library, or print why its candidate is skipped."""
    try:
        return __import__(name)
    except ImportError as e:
        print(f"  (skipping {name}: not importable: {e})")
        return None


# --------------------------------------------------------------------------------------
# (a) gradient of a 10-op scalar function
# --------------------------------------------------------------------------------------
def ten_ops(m, x):
    """The function, written once over a NumPy-like namespace ``m``: 10 primitive ops."""
    a = m.sin(x) * x                   # sin, mul
    e = m.exp(-(x * x))                # mul, neg, exp
    t = m.tanh(a + e)                  # add, tanh
    return m.sum(t * t + x)            # mul, add, sum


def ten_ops_grad_numpy(x):
    """Forward and backward of :func:`ten_ops` by hand."""
    s = np.sin(x)
    a = s * x
    e = np.exp(-(x * x))
    t = np.tanh(a + e)
    dt = 2.0 * t
    du = dt * (1.0 - t * t)
    return 1.0 + du * (s + x * np.cos(x)) - 2.0 * x * (du * e)


def grad_candidates():
    x = np.random.default_rng(0).standard_normal(100)  # float64
    cands = {"numpy (by hand)": lambda: ten_ops_grad_numpy(x)}

    fl_grad = fl.grad(lambda v: ten_ops(fnp, v))
    x_fl = fnp.asarray(x)
    cands["functorch_lite"] = lambda: fl_grad(x_fl)

    autograd = optional("autograd")
    if autograd:
        import autograd.numpy as anp

        ag_grad = autograd.grad(lambda v: ten_ops(anp, v))
        cands["autograd"] = lambda: ag_grad(x)

    torch = optional("torch")
    if torch:
        _timing.torch_threads(torch, ARGS.threads)
        x_t = torch.from_numpy(x.copy()).requires_grad_(True)

        def torch_grad():
            (g,) = torch.autograd.grad(ten_ops(torch, x_t), x_t)
            return g

        cands["pytorch eager"] = torch_grad

    jax = optional("jax")
    if jax:
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        jax_grad = jax.grad(lambda v: ten_ops(jnp, v))
        x_j = jnp.asarray(x)
        cands["jax (no jit)"] = lambda: jax_grad(x_j).block_until_ready()

    expected = ten_ops_grad_numpy(x)
    for name, fn in cands.items():
        got = np.asarray(fn().detach() if name == "pytorch eager" else fn())
        np.testing.assert_allclose(got, expected, rtol=1e-10, err_msg=name)
    return cands


# --------------------------------------------------------------------------------------
# (b) one SGD step of an MLP
# --------------------------------------------------------------------------------------
def mlp_data():
    return _mlp.mlp_data(MLP_SIZES, BATCH)


def mlp_loss(m, params, x, onehot, relu, stop_gradient):
    """Mean softmax cross-entropy of the MLP, over a NumPy-like namespace ``m``."""
    w1, b1, w2, b2, w3, b3 = params
    h = relu(x @ w1 + b1)
    h = relu(h @ w2 + b2)
    z = h @ w3 + b3
    top = stop_gradient(m.max(z, axis=1, keepdims=True))
    logp = z - (top + m.log(m.sum(m.exp(z - top), axis=1, keepdims=True)))
    return -m.sum(onehot * logp) / x.shape[0]


def sgd_step_numpy(params, x, onehot):
    return _mlp.sgd_step_numpy(params, x, onehot, LR)


def mlp_candidates():
    """``{name: step}``; each ``step()`` updates that candidate's own copy of the params."""
    params0, x, onehot = mlp_data()
    cands, finals = {}, {}

    np_params = [p.copy() for p in params0]
    cands["numpy (by hand)"] = lambda: sgd_step_numpy(np_params, x, onehot)
    finals["numpy (by hand)"] = lambda: np_params

    if hasattr(fnp, "matmul"):
        fl_state = [[fnp.asarray(p) for p in params0]]
        x_fl, onehot_fl = fnp.asarray(x), fnp.asarray(onehot)
        fl_grad = fl.grad(lambda ps: mlp_loss(fnp, ps, x_fl, onehot_fl, fl.nn.relu,
                                              fl.stop_gradient))

        def fl_step():
            ps = fl_state[0]
            fl_state[0] = [p - LR * g for p, g in zip(ps, fl_grad(ps), strict=True)]

        cands["functorch_lite"] = fl_step
        finals["functorch_lite"] = lambda: fl_state[0]
    else:
        print("  (skipping functorch_lite in (b): fnp.matmul is not available yet)")

    autograd = optional("autograd")
    if autograd:
        import autograd.numpy as anp
        from autograd.tracer import getval  # autograd's stop_gradient: unbox the value

        ag_state = [[p.copy() for p in params0]]
        ag_grad = autograd.grad(lambda ps: mlp_loss(anp, ps, x, onehot,
                                                    lambda v: anp.maximum(v, 0.0), getval))

        def ag_step():
            ps = ag_state[0]
            ag_state[0] = [p - LR * g for p, g in zip(ps, ag_grad(ps), strict=True)]

        cands["autograd"] = ag_step
        finals["autograd"] = lambda: ag_state[0]

    torch = optional("torch")
    if torch:
        _timing.torch_threads(torch, ARGS.threads)
        t_params = [torch.from_numpy(p.copy()).requires_grad_(True) for p in params0]
        x_t, onehot_t = torch.from_numpy(x), torch.from_numpy(onehot)

        def torch_step():
            loss = mlp_loss(_TorchNamespace(torch), t_params, x_t, onehot_t, torch.relu,
                            lambda v: v.detach())
            grads = torch.autograd.grad(loss, t_params)
            with torch.no_grad():
                for p, g in zip(t_params, grads, strict=True):
                    p.sub_(g, alpha=LR)

        cands["pytorch eager"] = torch_step
        finals["pytorch eager"] = lambda: [p.detach().numpy() for p in t_params]

    jax = optional("jax")
    if jax:
        import jax.numpy as jnp

        j_state = [[jnp.asarray(p) for p in params0]]
        x_j, onehot_j = jnp.asarray(x), jnp.asarray(onehot)
        j_grad = jax.grad(lambda ps: mlp_loss(jnp, ps, x_j, onehot_j, jax.nn.relu,
                                              jax.lax.stop_gradient))

        def jax_step():
            ps = j_state[0]
            j_state[0] = [p - LR * g for p, g in zip(ps, j_grad(ps), strict=True)]
            j_state[0][-1].block_until_ready()

        cands["jax (no jit)"] = jax_step
        finals["jax (no jit)"] = lambda: j_state[0]

    _check_one_step(cands, finals)
    return cands


class _TorchNamespace:
    """``torch`` with NumPy's reduction keywords (``axis``/``keepdims``)."""

    def __init__(self, torch):
        self.torch = torch

    def max(self, v, axis, keepdims):
        return self.torch.amax(v, dim=axis, keepdim=keepdims)

    def sum(self, v, axis=None, keepdims=False):
        if axis is None:
            return self.torch.sum(v)
        return self.torch.sum(v, dim=axis, keepdim=keepdims)

    def log(self, v):
        return self.torch.log(v)

    def exp(self, v):
        return self.torch.exp(v)


def _check_one_step(cands, finals):
    """Every candidate's first step must agree with the hand-written NumPy step."""
    for step in cands.values():
        step()
    expected = [np.asarray(p) for p in finals["numpy (by hand)"]()]
    for name, final in finals.items():
        for got, want in zip(final(), expected, strict=True):
            np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-6,
                                       err_msg=name)


# --------------------------------------------------------------------------------------
def main():
    _timing.print_header(ARGS, "Eager reverse mode (no jit)")
    tables = {}

    title = "(a) grad of a 10-op function, 100 float64"
    res = _timing.compare(grad_candidates(), baseline="numpy (by hand)", batch_ms=5.0)
    _timing.print_table(title, res, baseline="numpy (by hand)")
    tables[title] = res
    for other, target in (("pytorch eager", 0.8), ("autograd", 0.5)):
        if other in res:
            ratio = _timing.paired_ratio(res["functorch_lite"], res[other])
            status = "ok  " if ratio <= target else "MISS"
            print(f"  {status} functorch_lite / {other}: {ratio:.3f}x (target <= {target}x)")

    title = "(b) SGD step, MLP 64-256-256-10, batch 128, float32"
    res = _timing.compare(mlp_candidates(), baseline="numpy (by hand)", batch_ms=20.0)
    _timing.print_table(title, res, baseline="numpy (by hand)")
    tables[title] = res
    if "functorch_lite" in res:
        ratio = res["functorch_lite"].ratio
        status = "ok  " if ratio <= 1.3 else "MISS"
        print(f"  {status} functorch_lite / numpy (by hand): {ratio:.3f}x (target <= 1.3x)")
    _timing.save_json(ARGS, tables)


if __name__ == "__main__":
    main()
