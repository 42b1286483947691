"""Convolutions and pooling in PyTorch's channels-first layout (NCL / NCHW).

Both are written as im2col: the input is padded once, each kernel offset contributes one
strided slice, and the slices are stacked into patches ``(N, C, K, *out)`` (K = kernel
positions). A convolution is then one matmul against the flattened weight, a pool one
reduction over K. Only slicing, ``stack``, ``pad`` and ``matmul`` are used, so every
transform (grad, jit, vmap) works with no convolution primitive.
"""

import itertools
import math

import functorch_lite.numpy as fnp
from functorch_lite import random
from functorch_lite.nn._layers import check_input, default_kernel_init, uniform_bias
from functorch_lite.nn._module import Module

__all__ = ["Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d"]


def _tuple(value, n, what, layer):
    value = (value,) * n if isinstance(value, int) else tuple(value)
    if len(value) != n or not all(isinstance(v, int) for v in value):
        raise ValueError(f"nn.{layer}: {what} must be an int or {n} ints, got {value!r}")
    return value


def _output_sizes(layer, spatial, kernel, stride, padding, dilation):
    sizes = tuple((size + 2 * pad - dil * (k - 1) - 1) // s + 1
                  for size, k, s, pad, dil in zip(spatial, kernel, stride, padding, dilation,
                                                  strict=True))
    if min(sizes) < 1:
        raise ValueError(f"nn.{layer!r}: input spatial size {tuple(spatial)} is smaller than "
                         f"the (dilated) kernel {kernel} after padding {padding}")
    return sizes


def _patches(x, kernel, stride, padding, dilation, out_sizes, pad_value=0.0):
    """``(N, C, K, *out_sizes)``: the padded input at every kernel offset (row-major K)."""
    if any(padding):
        widths = [(0, 0), (0, 0)] + [(p, p) for p in padding]
        x = fnp.pad(x, widths, constant_values=pad_value)
    slices = []
    for offsets in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                       for o, d, s, n in zip(offsets, dilation, stride, out_sizes, strict=True))
        slices.append(x[(slice(None), slice(None)) + window])
    return fnp.stack(slices, axis=2)


class _ConvNd(Module):
    stateless = True
    spatial_dims = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, *, kernel_init=None, bias_init=None):
        n, name = self.spatial_dims, type(self).__name__
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", name)
        self.stride = _tuple(stride, n, "stride", name)
        self.padding = _tuple(padding, n, "padding", name)
        self.dilation = _tuple(dilation, n, "dilation", name)
        self.bias = bias
        self.kernel_init = kernel_init or default_kernel_init
        self.bias_init = bias_init

    def init(self, key):
        k_weight, k_bias = random.split(key)
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        params = {"weight": self.kernel_init(k_weight, shape)}
        if self.bias:
            fan_in = self.in_channels * math.prod(self.kernel_size)
            params["bias"] = (self.bias_init(k_bias, (self.out_channels,)) if self.bias_init
                              else uniform_bias(k_bias, fan_in, (self.out_channels,)))
        return params, {}

    def _param_keys(self):
        return ["weight", "bias"] if self.bias else ["weight"]

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.bias}")

    def forward(self, params, state, x, *, key, train):
        n = self.spatial_dims
        dims = "NCL" if n == 1 else "NCHW"
        check_input(self, x, ndims=(n + 1, n + 2), sizes={-n - 1: self.in_channels},
                    layout=f"({dims}) or ({dims[1:]}) with C={self.in_channels}")
        unbatched = fnp.ndim(x) == n + 1
        if unbatched:
            x = fnp.expand_dims(x, 0)
        out_sizes = _output_sizes(self, fnp.shape(x)[2:], self.kernel_size, self.stride,
                                  self.padding, self.dilation)
        patches = _patches(x, self.kernel_size, self.stride, self.padding, self.dilation,
                           out_sizes)
        batch = fnp.shape(x)[0]
        columns = fnp.reshape(patches, (batch, -1, math.prod(out_sizes)))
        weight = fnp.reshape(params["weight"], (self.out_channels, -1))
        y = fnp.reshape(fnp.matmul(weight, columns), (batch, self.out_channels) + out_sizes)
        if self.bias:
            y = y + fnp.reshape(params["bias"], (self.out_channels,) + (1,) * n)
        return y[0] if unbatched else y


class Conv1d(_ConvNd):
    """1-D convolution over ``(N, C_in, L)`` (or unbatched ``(C_in, L)``), as
    ``torch.nn.Conv1d`` (no groups; zero padding). Params: ``weight`` (C_out, C_in, k),
    ``bias`` (C_out,), PyTorch's default init.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> conv = Conv1d(2, 4, kernel_size=3, padding=1)
        >>> params, _ = conv.init(fl.random.key(0))
        >>> conv(params, fnp.ones((8, 2, 10))).shape
        (8, 4, 10)
    """

    spatial_dims = 1


class Conv2d(_ConvNd):
    """2-D convolution over ``(N, C_in, H, W)`` (or unbatched ``(C_in, H, W)``), as
    ``torch.nn.Conv2d`` (no groups; zero padding). Params: ``weight`` (C_out, C_in, kh,
    kw), ``bias`` (C_out,), PyTorch's default init.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> conv = Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
        >>> params, _ = conv.init(fl.random.key(0))
        >>> conv(params, fnp.ones((2, 3, 32, 32))).shape
        (2, 8, 16, 16)
    """

    spatial_dims = 2


class _Pool2d(Module):
    stateless = True

    def __init__(self, kernel_size, stride=None, padding=0):
        name = type(self).__name__
        self.kernel_size = _tuple(kernel_size, 2, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else _tuple(stride, 2, "stride", name)
        self.padding = _tuple(padding, 2, "padding", name)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(f"nn.{name}: padding {self.padding} must be at most half the "
                             f"kernel size {self.kernel_size}")

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def _windows(self, x, pad_value):
        check_input(self, x, ndims=(3, 4), sizes={}, layout="(N, C, H, W) or (C, H, W)")
        out_sizes = _output_sizes(self, fnp.shape(x)[-2:], self.kernel_size, self.stride,
                                  self.padding, (1, 1))
        unbatched = fnp.ndim(x) == 3
        batched = fnp.expand_dims(x, 0) if unbatched else x
        patches = _patches(batched, self.kernel_size, self.stride, self.padding, (1, 1),
                           out_sizes, pad_value)
        return patches, unbatched


class MaxPool2d(_Pool2d):
    """Max over ``kernel_size`` windows (``torch.nn.MaxPool2d``; stride defaults to the
    kernel size; padding counts as -inf).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> MaxPool2d(2)({}, fnp.arange(16.0).reshape(1, 1, 4, 4))
        Array([[[[ 5.,  7.],
                 [13., 15.]]]], dtype=float32)
    """

    def forward(self, params, state, x, *, key, train):
        patches, unbatched = self._windows(x, -fnp.inf)
        y = fnp.max(patches, axis=2)
        return y[0] if unbatched else y


class AvgPool2d(_Pool2d):
    """Mean over ``kernel_size`` windows (``torch.nn.AvgPool2d`` with its defaults: stride
    = kernel size; zero padding counted in the mean).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> AvgPool2d(2)({}, fnp.arange(16.0).reshape(1, 1, 4, 4))
        Array([[[[ 2.5,  4.5],
                 [10.5, 12.5]]]], dtype=float32)
    """

    def forward(self, params, state, x, *, key, train):
        patches, unbatched = self._windows(x, 0.0)
        y = fnp.mean(patches, axis=2)
        return y[0] if unbatched else y
