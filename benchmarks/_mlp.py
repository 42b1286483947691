"""The hand-written NumPy MLP training step the benchmarks compare against.

Import after ``_timing.setup`` (it imports numpy, whose thread count setup fixes).
"""

import numpy as np


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
