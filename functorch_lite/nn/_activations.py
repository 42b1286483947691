"""Activation functions: plain functions of arrays (use them directly or in Sequential)."""

import math

import functorch_lite.numpy as fnp
from functorch_lite.autodiff import stop_gradient
from functorch_lite.core import Array, Tracer, bind
from functorch_lite.primitives.elementwise import relu_p
from functorch_lite.primitives.random import erf_p

__all__ = ["relu", "gelu", "silu", "sigmoid", "tanh", "softmax", "log_softmax", "logsumexp"]


def relu(x):
    """max(x, 0), with derivative 0 at x = 0 (as ``torch.relu`` and ``jax.nn.relu``;
    ``fnp.maximum(x, 0)`` would split the tie and give 1/2). One primitive: its backward
    is one compare and one multiply.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> relu(fnp.array([-1.0, 0.0, 2.0]))
        Array([0., 0., 2.], dtype=float32)
        >>> fl.grad(lambda x: fnp.sum(relu(x)))(fnp.array([-1.0, 0.0, 2.0]))
        Array([0., 0., 1.], dtype=float32)
    """
    return bind(relu_p, x if isinstance(x, (Array, Tracer)) else fnp.asarray(x))


def gelu(x, approximate=False):
    """Gaussian error linear unit ``x * Phi(x)``; ``approximate=True`` uses the tanh formula
    (PyTorch's ``approximate='tanh'``). Default exact, as PyTorch.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> gelu(fnp.array([0.0, 1.0]))
        Array([0.       , 0.8413447], dtype=float32)
    """
    x = fnp.asarray(x)
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + fnp.tanh(inner))
    return 0.5 * x * (1.0 + bind(erf_p, x * (1.0 / math.sqrt(2.0))))


def sigmoid(x):
    """The logistic function ``1 / (1 + exp(-x))``, computed as ``(1 + tanh(x/2)) / 2`` so
    it never overflows.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> sigmoid(fnp.array([0.0, 1000.0, -1000.0]))
        Array([0.5, 1. , 0. ], dtype=float32)
    """
    return 0.5 * (1.0 + fnp.tanh(0.5 * fnp.asarray(x)))


def silu(x):
    """``x * sigmoid(x)`` (also called swish).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> silu(fnp.array([0.0]))
        Array([0.], dtype=float32)
    """
    x = fnp.asarray(x)
    return x * sigmoid(x)


def tanh(x):
    """Hyperbolic tangent (``fnp.tanh``), here so a Sequential can name it as ``nn.tanh``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> tanh(fnp.array([0.0]))
        Array([0.], dtype=float32)
    """
    return fnp.tanh(x)


def logsumexp(x, axis=-1, keepdims=False):
    """``log(sum(exp(x), axis))``, stable for large inputs (``fnp.logsumexp``, last axis by
    default as in the rest of ``nn``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> logsumexp(fnp.array([1000.0, 1000.0]))
        Array(1000.6932, dtype=float32)
    """
    return fnp.logsumexp(x, axis=axis, keepdims=keepdims)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis``: stable log-probabilities.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.exp(log_softmax(fnp.array([0.0, 0.0])))
        Array([0.5, 0.5], dtype=float32)
    """
    x = fnp.asarray(x)
    shifted = x - stop_gradient(fnp.max(x, axis=axis, keepdims=True))
    return shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=axis, keepdims=True))


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``, shifted by the max so it never overflows.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> softmax(fnp.array([1000.0, 1000.0]))
        Array([0.5, 0.5], dtype=float32)
    """
    x = fnp.asarray(x)
    unnormalized = fnp.exp(x - stop_gradient(fnp.max(x, axis=axis, keepdims=True)))
    return unnormalized / fnp.sum(unnormalized, axis=axis, keepdims=True)
