"""Forward + backward of a one-layer LSTM: input 64, hidden 128, batch 32, 50 steps,
float32; the loss is the mean squared error of the final hidden state against a target,
and one call computes its gradient with respect to all weights.

Every candidate runs the same math: the input projection of all steps as one GEMM
(``xs @ w_x + b``), then per step ``z = xproj[t] + h @ w_h``, gates ``i, f, g, o`` (in
that order, like ``torch.nn.LSTM``), ``c = f c + i g``, ``h = o tanh(c)``. The baseline
is the forward and backpropagation through time written by hand in NumPy (its gradient
is checked against central finite differences in :func:`self_test`). Candidates:
``fl.jit(fl.grad(loss))`` with the loop as one ``fl.scan``, the same ``fl.grad`` without
jit, and when installed ``jax.jit(jax.grad(loss))`` with ``lax.scan``, PyTorch eager (the
same cell loop under autograd) and ``torch.nn.LSTM`` (PyTorch's own kernel). Every
candidate's gradient is checked against the hand-written one before timing.

Measured 2026-11-22 (2 vCPUs, 1 thread, busy machine, ratios vs NumPy by hand):
fl.jit(grad) 1.2-1.3x, fl.grad eager ~2.3x, jax.jit(grad) ~1.1x, torch cell loop ~1.2x,
torch.nn.LSTM ~0.65x. GEMMs were ~60% of the jitted gradient: its reverse scan ran 3 per
step (it recomputed ``h @ w_h`` and the gates, since scan saved only the carry, and
accumulates ``h.T @ dz`` step by step) where the hand BPTT runs 1 per step and the
weight gradients as single GEMMs over all steps.

2026-12-06, idle machine: scan's reverse mode now saves each step's residuals (the
gates, ``h @ w_h``) in the forward scan and runs only the derivative rules backwards (2
GEMMs per step): fl.jit(grad) 1.06x (jax.jit(grad) 1.04-1.07x in the same runs), fl.grad
eager 2.1x (was 2.35x in the same session).

Run: ``python -m benchmarks.lstm [--threads N] [--json] [--quick]``
"""

import os

from benchmarks import _timing

ARGS = _timing.setup("lstm", description=__doc__)
if ARGS.threads == 1:
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import numpy as np  # noqa: E402

import functorch_lite as fl  # noqa: E402
import functorch_lite.numpy as fnp  # noqa: E402

IN, HID, BATCH, STEPS = 64, 128, 32, 50
BASELINE = "numpy (by hand)"
NAMES = ("w_x", "w_h", "b")


def make_data(seed=0, dtype=np.float32, steps=STEPS):
    rng = np.random.default_rng(seed)
    scale = 1 / np.sqrt(HID)
    params = {"w_x": rng.uniform(-scale, scale, (IN, 4 * HID)).astype(dtype),
              "w_h": rng.uniform(-scale, scale, (HID, 4 * HID)).astype(dtype),
              "b": rng.uniform(-scale, scale, 4 * HID).astype(dtype)}
    xs = rng.standard_normal((steps, BATCH, IN)).astype(dtype)
    target = rng.standard_normal((BATCH, HID)).astype(dtype)
    return params, xs, target


# --------------------------------------------------------------------------------------
# The loss, written once over a NumPy-like namespace ``m`` and a scan ``scan(step, init,
# xs) -> (carry, ys)``: fl (fnp, fl.scan), JAX (jnp, lax.scan), PyTorch (a Python loop)
# --------------------------------------------------------------------------------------
def lstm_loss(params, xs, target, m, scan, sigmoid):
    xproj = (xs.reshape(-1, IN) @ params["w_x"] + params["b"]).reshape(xs.shape[0], BATCH,
                                                                      4 * HID)
    w_h = params["w_h"]

    def step(carry, xp):
        h, c = carry
        z = xp + h @ w_h
        i, f = sigmoid(z[:, :HID]), sigmoid(z[:, HID:2 * HID])
        g, o = m.tanh(z[:, 2 * HID:3 * HID]), sigmoid(z[:, 3 * HID:])
        c = f * c + i * g
        return (o * m.tanh(c), c), None

    zeros = m.zeros((BATCH, HID), dtype=xs.dtype)
    (h, _), _ = scan(step, (zeros, zeros), xproj)
    return m.mean((h - target) ** 2)


def python_scan(step, init, xs):
    carry = init
    for x in xs:
        carry, _ = step(carry, x)
    return carry, None


def fl_loss(params, xs, target):
    return lstm_loss(params, xs, target, fnp, fl.scan, lambda z: 1 / (1 + fnp.exp(-z)))


# --------------------------------------------------------------------------------------
# The baseline: forward and BPTT by hand
# --------------------------------------------------------------------------------------
def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_forward(params, xs, target):
    """The loss and what the backward pass needs: per step the previous ``h`` and ``c``,
    the gates and ``tanh(c)``."""
    steps = xs.shape[0]
    xproj = (xs.reshape(-1, IN) @ params["w_x"] + params["b"]).reshape(steps, BATCH, 4 * HID)
    h = np.zeros((BATCH, HID), xs.dtype)
    c = np.zeros_like(h)
    tape = []
    for t in range(steps):
        z = xproj[t] + h @ params["w_h"]
        gates = np.empty_like(z)
        gates[:, :2 * HID] = _sigmoid(z[:, :2 * HID])
        gates[:, 2 * HID:3 * HID] = np.tanh(z[:, 2 * HID:3 * HID])
        gates[:, 3 * HID:] = _sigmoid(z[:, 3 * HID:])
        i, f, g, o = np.split(gates, 4, axis=1)
        c_prev, c = c, f * c + i * g
        tanh_c = np.tanh(c)
        tape.append((h, c_prev, gates, tanh_c))
        h = o * tanh_c
    return np.mean((h - target) ** 2), h, tape


def numpy_grad(params, xs, target):
    """Gradient of the loss w.r.t. ``w_x``, ``w_h``, ``b``: BPTT, with the weight
    gradients of all steps as single GEMMs over the stacked gate gradients."""
    _, h, tape = numpy_forward(params, xs, target)
    steps = xs.shape[0]
    w_h_t = params["w_h"].T
    dh = (2.0 / h.size) * (h - target)
    dc = np.zeros_like(dh)
    dz_all = np.empty((steps, BATCH, 4 * HID), xs.dtype)
    for t in range(steps - 1, -1, -1):
        h_prev, c_prev, gates, tanh_c = tape[t]
        i, f, g, o = np.split(gates, 4, axis=1)
        dc += dh * o * (1 - tanh_c * tanh_c)
        dz = dz_all[t]
        dz[:, :HID] = dc * g * i * (1 - i)
        dz[:, HID:2 * HID] = dc * c_prev * f * (1 - f)
        dz[:, 2 * HID:3 * HID] = dc * i * (1 - g * g)
        dz[:, 3 * HID:] = dh * tanh_c * o * (1 - o)
        dc *= f
        dh = dz @ w_h_t
    h_prevs = np.stack([entry[0] for entry in tape])
    dz_flat = dz_all.reshape(-1, 4 * HID)
    return {"w_x": xs.reshape(-1, IN).T @ dz_flat,
            "w_h": h_prevs.reshape(-1, HID).T @ dz_flat,
            "b": dz_flat.sum(axis=0)}


def self_test(samples=12, seed=1):
    """The hand-written BPTT against central finite differences (float64, 5 steps) at a
    few random coordinates of each weight."""
    params, xs, target = make_data(seed, np.float64, steps=5)
    grads = numpy_grad(params, xs, target)
    rng, eps = np.random.default_rng(seed), 1e-6
    for name in NAMES:
        for _ in range(samples):
            idx = tuple(rng.integers(0, n) for n in params[name].shape)
            loss_at = []
            for delta in (eps, -eps):
                moved = {k: v.copy() for k, v in params.items()}
                moved[name][idx] += delta
                loss_at.append(numpy_forward(moved, xs, target)[0])
            fd = (loss_at[0] - loss_at[1]) / (2 * eps)
            np.testing.assert_allclose(grads[name][idx], fd, rtol=1e-5, atol=1e-9,
                                       err_msg=f"BPTT by hand, d loss / d {name}{idx}")


# --------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------
def _jax_candidates(params, xs, target):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as e:
        print(f"  (skipping jax: {e})")
        return {}
    jp = {k: jnp.asarray(v) for k, v in params.items()}
    jx, jt = jnp.asarray(xs), jnp.asarray(target)
    loss = lambda p, x, t: lstm_loss(p, x, t, jnp, jax.lax.scan, jax.nn.sigmoid)
    jgrad = jax.jit(jax.grad(loss))
    return {"jax.jit(grad), lax.scan": lambda: jax.block_until_ready(jgrad(jp, jx, jt))}


def _torch_candidates(params, xs, target):
    try:
        import torch
    except ImportError as e:
        print(f"  (skipping torch: {e})")
        return {}
    _timing.torch_threads(torch, ARGS.threads)
    tx, tt = torch.from_numpy(xs), torch.from_numpy(target)
    tp = {k: torch.from_numpy(v.copy()) for k, v in params.items()}

    def cell_loop():
        p = {k: v.detach().requires_grad_(True) for k, v in tp.items()}
        loss = lstm_loss(p, tx, tt, torch, python_scan, torch.sigmoid)
        return dict(zip(NAMES, torch.autograd.grad(loss, [p[k] for k in NAMES])))

    # torch.nn.LSTM holds W_ih (4H, in), W_hh (4H, H) and two biases; the same gate order.
    lstm = torch.nn.LSTM(IN, HID)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(tp["w_x"].T)
        lstm.weight_hh_l0.copy_(tp["w_h"].T)
        lstm.bias_ih_l0.copy_(tp["b"])
        lstm.bias_hh_l0.zero_()

    def nn_lstm():
        lstm.zero_grad()
        _, (h, _) = lstm(tx)
        torch.mean((h[0] - tt) ** 2).backward()
        return {"w_x": lstm.weight_ih_l0.grad.T, "w_h": lstm.weight_hh_l0.grad.T,
                "b": lstm.bias_ih_l0.grad}

    return {"torch eager (cell loop)": cell_loop, "torch.nn.LSTM": nn_lstm}


def candidates(params, xs, target):
    fp = {k: fnp.asarray(v) for k, v in params.items()}
    fx, ft = fnp.asarray(xs), fnp.asarray(target)
    grad = fl.grad(fl_loss)
    jitted = fl.jit(grad)
    cands = {BASELINE: lambda: numpy_grad(params, xs, target),
             "fl.jit(grad), fl.scan": lambda: jitted(fp, fx, ft),
             "fl.grad (eager), fl.scan": lambda: grad(fp, fx, ft)}
    cands.update(_jax_candidates(params, xs, target))
    cands.update(_torch_candidates(params, xs, target))
    want = numpy_grad(params, xs, target)
    for name, fn in cands.items():
        got = fn()
        for k in NAMES:
            np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=2e-3, atol=2e-6,
                                       err_msg=f"{name}: d loss / d {k}")
    return cands, jitted, (fp, fx, ft)


def main():
    _timing.print_header(ARGS, f"LSTM forward + backward: input {IN}, hidden {HID}, "
                               f"batch {BATCH}, {STEPS} steps, float32")
    self_test()
    params, xs, target = make_data()
    cands, jitted, args = candidates(params, xs, target)
    title = f"LSTM fwd+bwd, {IN}-{HID}, batch {BATCH}, {STEPS} steps, float32"
    res = _timing.compare(cands, baseline=BASELINE, batch_ms=40.0)
    _timing.print_table(title, res, baseline=BASELINE)
    print(f"  the jitted gradient: {len(jitted.lower(*args).graph.eqns)} equations "
          "(the loop body is one scan node)")
    _timing.save_json(ARGS, {title: res})


if __name__ == "__main__":
    main()
