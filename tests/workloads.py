"""Functions several test files run through the jit and its fusion (CPU and GPU)."""

import numpy as np

import functorch_lite.numpy as fnp


def gelu(x):
    """The tanh approximation of GELU: nine elementwise ops."""
    return 0.5 * x * (1 + fnp.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))


def layernorm(x):
    """Normalization over the last axis (no scale or shift): row reductions mid-chain."""
    m = fnp.mean(x, axis=-1, keepdims=True)
    c = x - m
    v = fnp.mean(c * c, axis=-1, keepdims=True)
    return c / fnp.sqrt(v + 1e-5)


def with_special_values(x, y):
    """Copies of ``x`` and ``y`` whose first elements pair up nan, +-inf, +-0 and ties."""
    x, y = x.copy(), y.copy()
    x.flat[:8] = [0.0, -0.0, np.nan, 1.0, np.inf, -np.inf, np.inf, 1.0]
    y.flat[:8] = [-0.0, 0.0, 1.0, np.nan, np.inf, -np.inf, -np.inf, 1.0]
    return x, y
