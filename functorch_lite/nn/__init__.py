"""``fl.nn``: modules are hyperparameters, parameters are pytrees.

A module (``nn.Linear(4, 8)``) holds only its hyperparameters and submodules.
``params, state = model.init(key)`` makes the parameters and the state (BatchNorm running
statistics) as plain pytrees of arrays; ``out, state = model.apply(params, state, x, *,
key=None, train=False)`` is a pure function of them, so it runs under ``fl.grad``,
``fl.jit`` and ``fl.vmap`` and its parameters go straight to ``fl.optim``.
Layers without state (all but BatchNorm) can be called as ``layer(params, x)``.

Conventions: PyTorch's layouts, parameter names and default initializations (Linear weight
``(out, in)``, convolutions NCHW, RNN inputs time-major unless ``batch_first``), except
that losses take the class axis LAST and ``Sequential`` params are lists.

Example:
    >>> import functorch_lite as fl
    >>> import functorch_lite.numpy as fnp
    >>> from functorch_lite import nn
    >>> model = nn.Sequential([nn.Linear(4, 16), nn.relu, nn.Dropout(0.1), nn.Linear(16, 3)])
    >>> params, state = model.init(fl.random.key(0))
    >>> x, labels = fnp.ones((8, 4)), fnp.zeros(8, dtype=fnp.int32)
    >>> def loss(params, key):
    ...     logits, _ = model.apply(params, state, x, key=key, train=True)
    ...     return nn.cross_entropy(logits, labels)
    >>> grads = fl.grad(loss)(params, fl.random.key(1))
    >>> grads[0]["weight"].shape, nn.count_params(params)
    ((16, 4), 131)
"""

from functorch_lite.nn import initializers
from functorch_lite.nn._activations import (
    gelu,
    log_softmax,
    logsumexp,
    relu,
    sigmoid,
    silu,
    softmax,
    tanh,
)
from functorch_lite.nn._attention import MultiHeadAttention
from functorch_lite.nn._conv import AvgPool2d, Conv1d, Conv2d, MaxPool2d
from functorch_lite.nn._layers import Dropout, Embedding, Flatten, Linear
from functorch_lite.nn._losses import (
    binary_cross_entropy,
    cross_entropy,
    huber,
    l1,
    mse,
    nll,
)
from functorch_lite.nn._module import Lambda, Module, count_params, l2_penalty, split_key
from functorch_lite.nn._norm import BatchNorm, BatchNorm1d, BatchNorm2d, LayerNorm
from functorch_lite.nn._recurrent import GRU, LSTM, RNN
from functorch_lite.nn._sequential import Sequential

__all__ = [
    "Module", "Lambda", "Sequential", "Linear", "Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d",
    "Flatten", "Embedding", "Dropout", "BatchNorm", "BatchNorm1d", "BatchNorm2d", "LayerNorm",
    "RNN", "LSTM", "GRU", "MultiHeadAttention",
    "relu", "gelu", "silu", "sigmoid", "tanh", "softmax", "log_softmax", "logsumexp",
    "cross_entropy", "nll", "binary_cross_entropy", "mse", "l1", "huber",
    "initializers", "count_params", "l2_penalty", "split_key",
]
