"""Normalization layers: BatchNorm (running statistics in ``state``) and LayerNorm."""

import math

import functorch_lite.numpy as fnp
from functorch_lite.autodiff import stop_gradient
from functorch_lite.nn._layers import check_input
from functorch_lite.nn._module import Module

__all__ = ["BatchNorm", "BatchNorm1d", "BatchNorm2d", "LayerNorm"]


class BatchNorm(Module):
    """Batch normalization over the channel axis 1 of ``(N, C)``, ``(N, C, L)`` or
    ``(N, C, H, W)`` inputs (PyTorch's BatchNorm1d/2d in one class).

    ``train=True`` normalizes with the batch statistics (biased variance) and returns the
    updated running statistics: ``running = (1 - momentum) * running + momentum * batch``,
    the variance term unbiased, as PyTorch. ``train=False`` uses the running statistics.
    Params: ``weight`` (ones), ``bias`` (zeros) when ``affine``; state: ``running_mean``
    (zeros), ``running_var`` (ones). Under ``fl.vmap`` each mapped example is its own
    batch (no cross-example statistics), as in JAX.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> bn = BatchNorm(3)
        >>> params, state = bn.init(fl.random.key(0))
        >>> x = fnp.arange(12.0).reshape(4, 3)
        >>> y, state = bn.apply(params, state, x, train=True)
        >>> fnp.round(state["running_mean"], 2)
        Array([0.45, 0.55, 0.65], dtype=float32)
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine

    def init(self, key):
        shape = (self.num_features,)
        params = {"weight": fnp.ones(shape), "bias": fnp.zeros(shape)} if self.affine else {}
        return params, {"running_mean": fnp.zeros(shape), "running_var": fnp.ones(shape)}

    def _param_keys(self):
        return ["weight", "bias"] if self.affine else []

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}")

    def forward(self, params, state, x, *, key, train):
        shape = check_input(self, x, ndims=(2, 3, 4), sizes={1: self.num_features},
                            layout=f"(N, {self.num_features}, *spatial)")
        axes = (0,) + tuple(range(2, len(shape)))
        # Reshapes a per-channel vector to broadcast against x.
        per_channel = (1, self.num_features) + (1,) * (len(shape) - 2)
        if train:
            mean = fnp.mean(x, axis=axes)
            var = fnp.mean(fnp.square(x - fnp.reshape(mean, per_channel)), axis=axes)
            count = math.prod(shape[a] for a in axes)
            unbiased = var * (count / max(count - 1, 1))
            m = self.momentum
            state = {
                "running_mean": stop_gradient((1 - m) * state["running_mean"] + m * mean),
                "running_var": stop_gradient((1 - m) * state["running_var"] + m * unbiased),
            }
        else:
            mean, var = state["running_mean"], state["running_var"]
        scale = 1.0 / fnp.sqrt(var + self.eps)
        if self.affine:
            scale = scale * params["weight"]
        y = (x - fnp.reshape(mean, per_channel)) * fnp.reshape(scale, per_channel)
        if self.affine:
            y = y + fnp.reshape(params["bias"], per_channel)
        return y, state


BatchNorm1d = BatchNorm
BatchNorm2d = BatchNorm


class LayerNorm(Module):
    """Normalize over the trailing ``normalized_shape`` axes (``torch.nn.LayerNorm``):
    ``(x - mean) / sqrt(var + eps) * weight + bias`` with the biased variance.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> ln = LayerNorm(4)
        >>> params, _ = ln.init(fl.random.key(0))
        >>> y = ln(params, fnp.arange(8.0).reshape(2, 4))
        >>> bool(fnp.allclose(y.mean(axis=-1), 0.0, atol=1e-6))
        True
    """

    stateless = True

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine

    def init(self, key):
        if not self.elementwise_affine:
            return {}, {}
        shape = self.normalized_shape
        return {"weight": fnp.ones(shape), "bias": fnp.zeros(shape)}, {}

    def _param_keys(self):
        return ["weight", "bias"] if self.elementwise_affine else []

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")

    def forward(self, params, state, x, *, key, train):
        n = len(self.normalized_shape)
        shape = tuple(fnp.shape(x))
        if shape[len(shape) - n:] != self.normalized_shape:
            raise ValueError(f"nn.{self!r}: expected input of shape (..., "
                             f"{', '.join(map(str, self.normalized_shape))}), got shape {shape}")
        axes = tuple(range(-n, 0))
        mean = fnp.mean(x, axis=axes, keepdims=True)
        centered = x - mean
        var = fnp.mean(fnp.square(centered), axis=axes, keepdims=True)
        y = centered / fnp.sqrt(var + self.eps)
        if self.elementwise_affine:
            y = y * params["weight"] + params["bias"]
        return y
