"""The hand-written NumPy MLP training step the benchmarks compare against.

Import after ``_timing.setup`` (it imports numpy, whose thread count setup fixes).
"""

import numpy as np


def mlp_data(sizes, batch, seed=0):
    """He-initialized float32 weights (zero biases), inputs and one-hot labels."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        w = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
        params += [w.astype(np.float32), np.zeros(n_out, np.float32)]
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    onehot = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    return params, x, onehot


def sgd_step_numpy(params, x, onehot, lr):
    """Forward, backward and in-place update by hand (what a careful NumPy user writes):
    relu layers, softmax cross-entropy, the softmax gradient in closed form."""
    w1, b1, w2, b2, w3, b3 = params
    z1 = x @ w1 + b1
    h1 = np.maximum(z1, 0.0)
    z2 = h1 @ w2 + b2
    h2 = np.maximum(z2, 0.0)
    z = h2 @ w3 + b3
    e = np.exp(z - z.max(axis=1, keepdims=True))
    dz = (e / e.sum(axis=1, keepdims=True) - onehot) * (1.0 / x.shape[0])
    dh2 = dz @ w3.T
    dz2 = dh2 * (z2 > 0)
    dh1 = dz2 @ w2.T
    dz1 = dh1 * (z1 > 0)
    grads = (x.T @ dz1, dz1.sum(axis=0), h1.T @ dz2, dz2.sum(axis=0), h2.T @ dz, dz.sum(axis=0))
    for p, g in zip(params, grads, strict=True):
        p -= lr * g
    return params
