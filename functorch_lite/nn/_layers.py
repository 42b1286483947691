"""Dense-style layers: Linear, Flatten, Embedding, Dropout, and the shared input checks."""

import math

import functorch_lite.numpy as fnp
from functorch_lite import random
from functorch_lite.nn import initializers
from functorch_lite.nn._module import Module

__all__ = ["Linear", "Flatten", "Embedding", "Dropout"]


def check_input(layer, x, *, ndims, sizes, layout):
    """Raise a ``ValueError`` naming the layer when ``x`` has the wrong rank or sizes.

    ``ndims`` are the accepted ranks; ``sizes`` maps an axis (negative: from the end) to
    its required size; ``layout`` describes the expected shape in words.
    """
    shape = tuple(fnp.shape(x))
    ok = len(shape) in ndims and all(shape[axis] == size for axis, size in sizes.items())
    if not ok:
        raise ValueError(f"nn.{layer!r}: expected input of shape {layout}, got shape {shape}")
    return shape


def uniform_bias(key, fan_in, shape, dtype=None):
    """PyTorch's default bias draw: U(±1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return initializers.uniform(-bound, bound)(key, shape, dtype)


# PyTorch's default for Linear and Conv weights: kaiming_uniform_(a=sqrt(5)), which is
# U(±1/sqrt(fan_in)).
default_kernel_init = initializers.kaiming_uniform(math.sqrt(5.0))


class Linear(Module):
    """``y = x @ weight.T + bias`` on the last axis, as ``torch.nn.Linear``.

    Params: ``weight`` (out_features, in_features) and ``bias`` (out_features,), drawn as
    PyTorch does (U(±1/sqrt(in_features)) for both) unless ``kernel_init``/``bias_init``
    (``init(key, shape, dtype)``) are given. Input: ``(..., in_features)``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> layer = Linear(3, 2)
        >>> params, _ = layer.init(fl.random.key(0))
        >>> layer(params, fnp.ones((4, 3))).shape
        (4, 2)
    """

    stateless = True

    def __init__(self, in_features, out_features, bias=True, *, kernel_init=None,
                 bias_init=None):
        self.in_features = in_features
        self.out_features = out_features
        self.bias = bias
        self.kernel_init = kernel_init or default_kernel_init
        self.bias_init = bias_init

    def init(self, key):
        k_weight, k_bias = random.split(key)
        params = {"weight": self.kernel_init(k_weight, (self.out_features, self.in_features))}
        if self.bias:
            shape = (self.out_features,)
            params["bias"] = (self.bias_init(k_bias, shape) if self.bias_init
                              else uniform_bias(k_bias, self.in_features, shape))
        return params, {}

    def _param_keys(self):
        return ["weight", "bias"] if self.bias else ["weight"]

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias}")

    def forward(self, params, state, x, *, key, train):
        check_input(self, x, ndims=range(1, 64), sizes={-1: self.in_features},
                    layout=f"(..., {self.in_features})")
        y = fnp.matmul(x, params["weight"].T)
        return y + params["bias"] if self.bias else y


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` into one (``torch.nn.Flatten``; default keeps the
    batch axis).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> Flatten()({}, fnp.zeros((2, 3, 4))).shape
        (2, 12)
    """

    stateless = True

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim = start_dim
        self.end_dim = end_dim

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, params, state, x, *, key, train):
        shape = tuple(fnp.shape(x))
        start = self.start_dim % max(len(shape), 1)
        end = self.end_dim % max(len(shape), 1)
        if len(shape) == 0 or start > end:
            raise ValueError(f"nn.{self!r}: cannot flatten dims {self.start_dim}..{self.end_dim} "
                             f"of an input of shape {shape}")
        merged = math.prod(shape[start:end + 1])
        return fnp.reshape(x, shape[:start] + (merged,) + shape[end + 1:])


class Embedding(Module):
    """A lookup table: integer indices ``(...)`` -> vectors ``(..., embedding_dim)``
    (``torch.nn.Embedding``; ``weight`` drawn from N(0, 1) as PyTorch does).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> emb = Embedding(10, 4)
        >>> params, _ = emb.init(fl.random.key(0))
        >>> emb(params, fnp.array([[1, 2, 3]])).shape
        (1, 3, 4)
    """

    stateless = True

    def __init__(self, num_embeddings, embedding_dim, *, embedding_init=None):
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.embedding_init = embedding_init or initializers.normal()

    def init(self, key):
        shape = (self.num_embeddings, self.embedding_dim)
        return {"weight": self.embedding_init(key, shape)}, {}

    def _param_keys(self):
        return ["weight"]

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"

    def forward(self, params, state, x, *, key, train):
        if not fnp.issubdtype(fnp.asarray(x).dtype, fnp.integer):
            raise TypeError(f"nn.{self!r}: indices must be integers, got dtype "
                            f"{fnp.asarray(x).dtype}")
        return fnp.take(params["weight"], x, axis=0)


class Dropout(Module):
    """Zero each entry with probability ``p`` and scale the rest by ``1/(1-p)`` when
    ``train=True`` (needs ``key``); the identity when ``train=False``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> drop = Dropout(0.5)
        >>> drop({}, fnp.ones(4))
        Array([1., 1., 1., 1.], dtype=float32)
        >>> y = drop({}, fnp.ones(1000), key=fl.random.key(0), train=True)
        >>> sorted(set(y.tolist()))
        [0.0, 2.0]
    """

    stateless = True

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"nn.Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, params, state, x, *, key, train):
        if not train or self.p == 0.0:
            return x
        if key is None:
            raise ValueError(f"nn.{self!r}: train=True needs a PRNG key; pass "
                             f"key=fl.random.key(...) to apply (a fresh one each step)")
        x = fnp.asarray(x)
        if self.p == 1.0:
            return fnp.zeros_like(x)
        keep = random.bernoulli(key, 1.0 - self.p, x.shape)
        return fnp.where(keep, x * (1.0 / (1.0 - self.p)), fnp.zeros_like(x))


