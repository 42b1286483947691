"""Parameter initializers: functions ``init(key, shape, dtype=None) -> Array``.

Fans follow PyTorch's weight layout, ``(out_features, in_features, *kernel)``:
``fan_in = shape[1] * prod(kernel)``, ``fan_out = shape[0] * prod(kernel)`` (a 1-D shape
has ``fan_in = fan_out = shape[0]``). ``dtype=None`` means the default float dtype
(float32, float64 under ``fl.config.enable_x64``).

Example:
    >>> import functorch_lite as fl
    >>> from functorch_lite.nn import initializers
    >>> initializers.he_normal(fl.random.key(0), (256, 128)).shape
    (256, 128)
    >>> initializers.zeros(fl.random.key(0), (2,))
    Array([0., 0.], dtype=float32)
"""

import math

import functorch_lite.numpy as fnp
from functorch_lite import random
from functorch_lite.config import default_float_dtype

__all__ = [
    "fans", "zeros", "ones", "uniform", "normal", "constant",
    "glorot_uniform", "glorot_normal", "xavier_uniform", "xavier_normal",
    "he_uniform", "he_normal", "kaiming_uniform", "kaiming_normal",
    "lecun_uniform", "lecun_normal", "orthogonal",
]


def _dtype(dtype):
    return default_float_dtype() if dtype is None else fnp.dtype(dtype)


def fans(shape):
    """``(fan_in, fan_out)`` of a weight of this shape, in PyTorch's layout.

    Example:
        >>> fans((8, 3, 5, 5))
        (75, 200)
    """
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def zeros(key, shape, dtype=None):
    """All zeros (the key is ignored).

    Example:
        >>> import functorch_lite as fl
        >>> zeros(fl.random.key(0), (2,))
        Array([0., 0.], dtype=float32)
    """
    return fnp.zeros(shape, _dtype(dtype))


def ones(key, shape, dtype=None):
    """All ones (the key is ignored).

    Example:
        >>> import functorch_lite as fl
        >>> ones(fl.random.key(0), (2,))
        Array([1., 1.], dtype=float32)
    """
    return fnp.ones(shape, _dtype(dtype))


def constant(value):
    """An initializer filling every entry with ``value``.

    Example:
        >>> import functorch_lite as fl
        >>> constant(0.5)(fl.random.key(0), (2,))
        Array([0.5, 0.5], dtype=float32)
    """
    def init(key, shape, dtype=None):
        return fnp.full(shape, value, _dtype(dtype))
    return init


def uniform(low=0.0, high=1.0):
    """An initializer drawing from U(low, high) (PyTorch's ``nn.init.uniform_``).

    Example:
        >>> import functorch_lite as fl
        >>> w = uniform(-0.1, 0.1)(fl.random.key(0), (1000,))
        >>> bool(abs(w).max() <= 0.1)
        True
    """
    def init(key, shape, dtype=None):
        return random.uniform(key, shape, _dtype(dtype), low, high)
    return init


def normal(mean=0.0, std=1.0):
    """An initializer drawing from N(mean, std**2) (PyTorch's ``nn.init.normal_``).

    Example:
        >>> import functorch_lite as fl
        >>> normal(std=0.02)(fl.random.key(0), (3, 4)).shape
        (3, 4)
    """
    def init(key, shape, dtype=None):
        return mean + std * random.normal(key, shape, _dtype(dtype))
    return init


def _variance_scaling(scale, mode, distribution):
    """Draws with variance ``scale / fan`` (uniform on ±sqrt(3 * variance) or normal)."""
    def init(key, shape, dtype=None):
        fan_in, fan_out = fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        std = math.sqrt(scale / max(fan, 1))
        if distribution == "uniform":
            bound = math.sqrt(3.0) * std
            return random.uniform(key, shape, _dtype(dtype), -bound, bound)
        return std * random.normal(key, shape, _dtype(dtype))
    return init


def kaiming_uniform(a=0.0, mode="fan_in"):
    """PyTorch's ``kaiming_uniform_`` for a leaky-relu slope ``a``: U(±gain*sqrt(3/fan)),
    ``gain = sqrt(2 / (1 + a**2))``. ``a=sqrt(5)`` is PyTorch's Linear/Conv default.

    Example:
        >>> import math, functorch_lite as fl
        >>> w = kaiming_uniform(math.sqrt(5))(fl.random.key(0), (4, 9))
        >>> bool(abs(w).max() <= 1 / 3)
        True
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"nn.initializers.kaiming_uniform: mode must be 'fan_in' or "
                         f"'fan_out', got {mode!r}")
    return _variance_scaling(2.0 / (1.0 + a * a), mode, "uniform")


def kaiming_normal(a=0.0, mode="fan_in"):
    """PyTorch's ``kaiming_normal_``: N(0, gain**2 / fan), ``gain = sqrt(2 / (1 + a**2))``.

    Example:
        >>> import functorch_lite as fl
        >>> kaiming_normal(mode="fan_out")(fl.random.key(0), (4, 9)).dtype
        dtype('float32')
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"nn.initializers.kaiming_normal: mode must be 'fan_in' or "
                         f"'fan_out', got {mode!r}")
    return _variance_scaling(2.0 / (1.0 + a * a), mode, "normal")


glorot_uniform = _variance_scaling(1.0, "fan_avg", "uniform")
glorot_uniform.__doc__ = """Glorot/Xavier uniform: U(±sqrt(6 / (fan_in + fan_out))).

    Example:
        >>> import functorch_lite as fl
        >>> glorot_uniform(fl.random.key(0), (3, 5)).shape
        (3, 5)
    """
glorot_normal = _variance_scaling(1.0, "fan_avg", "normal")
glorot_normal.__doc__ = """Glorot/Xavier normal: N(0, 2 / (fan_in + fan_out)).

    Example:
        >>> import functorch_lite as fl
        >>> glorot_normal(fl.random.key(0), (3, 5)).shape
        (3, 5)
    """
xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
he_uniform = _variance_scaling(2.0, "fan_in", "uniform")
he_uniform.__doc__ = """He/Kaiming uniform (relu gain): U(±sqrt(6 / fan_in)).

    Example:
        >>> import functorch_lite as fl
        >>> he_uniform(fl.random.key(0), (3, 5)).shape
        (3, 5)
    """
he_normal = _variance_scaling(2.0, "fan_in", "normal")
he_normal.__doc__ = """He/Kaiming normal (relu gain): N(0, 2 / fan_in).

    Example:
        >>> import functorch_lite as fl
        >>> he_normal(fl.random.key(0), (3, 5)).shape
        (3, 5)
    """
lecun_uniform = _variance_scaling(1.0, "fan_in", "uniform")
lecun_uniform.__doc__ = """LeCun uniform: U(±sqrt(3 / fan_in)).

    Example:
        >>> import functorch_lite as fl
        >>> lecun_uniform(fl.random.key(0), (3, 5)).shape
        (3, 5)
    """
lecun_normal = _variance_scaling(1.0, "fan_in", "normal")
lecun_normal.__doc__ = """LeCun normal: N(0, 1 / fan_in).

    Example:
        >>> import functorch_lite as fl
        >>> lecun_normal(fl.random.key(0), (3, 5)).shape
        (3, 5)
    """


def orthogonal(key, shape, dtype=None, gain=1.0):
    """A (semi-)orthogonal matrix: the rows or the columns of ``shape[0] x prod(shape[1:])``
    are orthonormal, times ``gain`` (PyTorch's ``orthogonal_``: QR of a Gaussian with the
    signs of R's diagonal folded in, so the draw is uniform over orthogonal matrices).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> q = orthogonal(fl.random.key(0), (3, 3))
        >>> bool(fnp.allclose(q @ q.T, fnp.eye(3), atol=1e-5))
        True
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"nn.initializers.orthogonal: needs at least 2 dimensions, got "
                         f"shape {shape}")
    rows, cols = shape[0], math.prod(shape[1:])
    gaussian = random.normal(key, (max(rows, cols), min(rows, cols)), _dtype(dtype))
    q, r = fnp.linalg.qr(gaussian)
    q = q * fnp.sign(fnp.diagonal(r))
    if rows < cols:
        q = q.T
    return gain * q.reshape(shape)
