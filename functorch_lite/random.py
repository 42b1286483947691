"""Random numbers from explicit keys, as ``jax.random``: no global state anywhere.

A key is a uint32[2] array (what JAX calls a raw key). Every sampler is a pure function
of its key: the same key gives the same values on every call, eagerly and under ``jit``,
``vmap`` and ``grad``, on the CPU and on a GPU. Use a key once; derive new ones with
:func:`split` (several independent keys) or :func:`fold_in` (a key for a step number).

The bits come from Threefry-2x32, a counter-based generator (see
``functorch_lite.primitives.random``); the samplers are composites of ``fnp`` functions on
those bits, so they trace like any other code. Under ``vmap`` a batch of keys gives
independent draws per key, equal to drawing with each key alone.

Example:
    >>> import functorch_lite as fl
    >>> key = fl.random.key(0)
    >>> init_key, dropout_key = fl.random.split(key)
    >>> w = fl.random.normal(init_key, (3, 2))
    >>> w.shape, w.dtype
    ((3, 2), dtype('float32'))
"""

from __future__ import annotations

import math
import operator

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite.autodiff import stop_gradient
from functorch_lite.config import settings
from functorch_lite.core import Tracer, aval_of, bind
from functorch_lite.primitives.random import FOLD_IN, erf_p, erfinv_p, random_bits_p, threefry2x32_p

__all__ = ["key", "split", "fold_in", "bits", "uniform", "normal", "bernoulli", "randint",
           "permutation", "choice", "categorical", "gumbel", "truncated_normal"]

_UINT32_MASK = 0xFFFFFFFF


# --------------------------------------------------------------------------------------
# Argument checks shared by the samplers
# --------------------------------------------------------------------------------------
def _check_key(fn_name, key):
    """``key`` as an array, or a TypeError that says how to make one."""
    try:
        aval = aval_of(key)
    except TypeError:
        aval = None
    if aval is not None and aval.dtype == np.uint32 and aval.shape == (2,):
        return key if isinstance(key, Tracer) else fnp.asarray(key)
    if aval is not None and aval.dtype == np.uint32 and aval.shape[-1:] == (2,):
        raise TypeError(
            f"fl.random.{fn_name} takes one key, got a batch of keys "
            f"{aval.str_short()}. Draw once per key with "
            f"fl.vmap(lambda k: fl.random.{fn_name}(k, ...))(keys).")
    got = aval.str_short() if aval is not None else type(key).__name__
    raise TypeError(
        f"fl.random.{fn_name} expects a PRNG key (a uint32[2] array), got {got}. Make one "
        f"with key = fl.random.key(seed) and derive fresh ones with fl.random.split(key).")


def _shape(fn_name, shape):
    """``shape`` as a tuple of non-negative ints (an int is a 1-d shape)."""
    dims = (shape,) if isinstance(shape, (int, np.integer)) else shape
    try:
        dims = tuple(operator.index(d) for d in dims)
    except TypeError:
        raise TypeError(f"fl.random.{fn_name}: shape must be a tuple of ints, got "
                        f"{shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"fl.random.{fn_name}: shape {dims} has a negative dimension")
    return dims


def _float_dtype(fn_name, dtype):
    if dtype is None:
        return settings.float_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"fl.random.{fn_name}: dtype must be a floating-point dtype, got "
                        f"{dtype}; use fl.random.randint for integers")
    return dtype


def _check_broadcasts_to(fn_name, shape, **operands):
    """Each operand's shape must broadcast to ``shape`` (the draw's shape), as in JAX."""
    for name, value in operands.items():
        operand_shape = aval_of(value).shape
        try:
            fits = np.broadcast_shapes(shape, operand_shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"fl.random.{fn_name}: {name} has shape {operand_shape}, which does not "
                f"broadcast to the requested shape {shape}; pass shape=None to draw one "
                f"value per element of {name}, or a shape that ends with its shape")


# Python numbers stay Python numbers: weakly typed, they take the draw's dtype, and they
# combine with buffers of any backend (a CuPy op rejects even a 0-d NumPy array).
_PY_NUMBERS = (int, float)


def _as_float(value, dtype):
    if isinstance(value, _PY_NUMBERS):
        return float(value)
    value = fnp.asarray(value)
    return value if value.dtype == dtype else fnp.astype(value, dtype)


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------
def key(seed):
    """A PRNG key for an integer seed: a uint32[2] array (as ``jax.random.PRNGKey``).

    The two words are the high and low halves of the seed as a 64-bit integer (negative
    seeds wrap). ``seed`` may be traced: ``fl.vmap(fl.random.key)(seeds)`` makes a batch
    of keys. With ``fl.config.set_default_device``, the key (and so every draw from it)
    lives on that device.

    Example:
        >>> import functorch_lite as fl
        >>> fl.random.key(42)
        Array([ 0, 42], dtype=uint32)
    """
    if isinstance(seed, (int, np.integer)):
        seed = int(seed)
        if not -2**63 <= seed < 2**64:
            raise ValueError(f"fl.random.key: seed {seed} does not fit in 64 bits")
        seed &= 2**64 - 1
        from functorch_lite.devices import place_on_default_device

        return place_on_default_device(
            fnp.array([seed >> 32, seed & _UINT32_MASK], dtype=np.uint32))
    aval = aval_of(seed)
    if aval.dtype.kind not in "iu" or aval.shape != ():
        raise TypeError(f"fl.random.key: seed must be an integer scalar, got "
                        f"{aval.str_short()}")
    seed = fnp.astype(seed, np.uint64)  # wraps a negative seed, like the int path
    high = fnp.astype(fnp.right_shift(seed, 32), np.uint32)
    low = fnp.astype(fnp.bitwise_and(seed, _UINT32_MASK), np.uint32)
    return fnp.stack([high, low])


def split(key, num=2):
    """``num`` new independent keys (an int or a shape), stacked: uint32[num, 2].

    Example:
        >>> import functorch_lite as fl
        >>> keys = fl.random.split(fl.random.key(0), 3)
        >>> keys.shape, keys.dtype
        ((3, 2), dtype('uint32'))
        >>> bool((keys[0] != keys[1]).any())
        True
    """
    key = _check_key("split", key)
    shape = _shape("split", num)
    return bind(random_bits_p, key, shape=shape + (2,), bit_width=32)


def fold_in(key, data):
    """A new key from ``key`` and an integer ``data`` (a step number, a layer index...).

    Different ``data`` give independent keys; ``data`` is taken as a uint32 (an integer
    array wraps modulo 2**32) and may be traced.

    Example:
        >>> import functorch_lite as fl
        >>> key = fl.random.key(0)
        >>> step_keys = [fl.random.fold_in(key, step) for step in range(3)]
        >>> len({tuple(k.tolist()) for k in step_keys})
        3
    """
    key = _check_key("fold_in", key)
    if isinstance(data, (int, np.integer)):
        if not -2**31 <= int(data) < 2**32:
            raise ValueError(f"fl.random.fold_in: data {int(data)} does not fit in 32 bits")
        data = int(data) & _UINT32_MASK
    else:
        aval = aval_of(data)
        if aval.dtype.kind not in "iub" or aval.shape != ():
            raise TypeError(f"fl.random.fold_in: data must be an integer scalar, got "
                            f"{aval.str_short()}")
        data = fnp.astype(data, np.uint32)
    high, low = bind(threefry2x32_p, key[0], key[1], FOLD_IN, data)
    return fnp.stack([high, low])


# --------------------------------------------------------------------------------------
# Bits and uniform floats
# --------------------------------------------------------------------------------------
def bits(key, shape=(), dtype=None):
    """Uniformly random unsigned integers of ``dtype`` (uint8/16/32/64; default uint32).

    Example:
        >>> import functorch_lite as fl
        >>> b = fl.random.bits(fl.random.key(0), (2, 3), "uint8")
        >>> b.shape, b.dtype
        ((2, 3), dtype('uint8'))
    """
    key = _check_key("bits", key)
    dtype = np.dtype(np.uint32 if dtype is None else dtype)
    if dtype.kind != "u":
        raise TypeError(f"fl.random.bits: dtype must be an unsigned integer dtype, got "
                        f"{dtype}")
    return bind(random_bits_p, key, shape=_shape("bits", shape), bit_width=8 * dtype.itemsize)


def _unit_uniform(key, shape, dtype):
    """Floats in [0, 1) of ``dtype``: one random integer per mantissa bit, times 2**-m.

    The integer is exactly representable, so every value is a multiple of 2**-m and all
    2**m of them are equally likely (24 bits for float32, 53 for float64).
    """
    mantissa = np.finfo(dtype).nmant + 1
    width = 32 if mantissa <= 32 else 64
    raw = bind(random_bits_p, key, shape=shape, bit_width=width)
    return fnp.astype(fnp.right_shift(raw, width - mantissa), dtype) * (2.0 ** -mantissa)


def uniform(key, shape=(), dtype=None, minval=0.0, maxval=1.0):
    """Uniform floats in ``[minval, maxval)``; ``minval``/``maxval`` broadcast to ``shape``.

    Example:
        >>> import functorch_lite as fl
        >>> u = fl.random.uniform(fl.random.key(0), (1000,), minval=-1.0, maxval=1.0)
        >>> u.dtype, bool((u >= -1).all() and (u < 1).all())
        (dtype('float32'), True)
    """
    key = _check_key("uniform", key)
    shape = _shape("uniform", shape)
    dtype = _float_dtype("uniform", dtype)
    _check_broadcasts_to("uniform", shape, minval=minval, maxval=maxval)
    minval, maxval = _as_float(minval, dtype), _as_float(maxval, dtype)
    return minval + (maxval - minval) * _unit_uniform(key, shape, dtype)


def normal(key, shape=(), dtype=None):
    """Standard normal floats (mean 0, variance 1), by the Box-Muller transform.

    Example:
        >>> import functorch_lite as fl
        >>> z = fl.random.normal(fl.random.key(0), (10000,))
        >>> z.dtype, abs(float(z.mean())) < 0.05, abs(float(z.std()) - 1) < 0.05
        (dtype('float32'), True, True)
    """
    key = _check_key("normal", key)
    shape = _shape("normal", shape)
    dtype = _float_dtype("normal", dtype)
    size = math.prod(shape)
    half = (size + 1) // 2
    # Each pair of uniforms (u, v) gives two independent normals r cos(t) and r sin(t).
    u = _unit_uniform(key, (2, half), dtype)
    radius = fnp.sqrt(-2.0 * fnp.log1p(-u[0]))  # 1 - u lies in (0, 1]: the log is finite
    angle = (2 * math.pi) * u[1]
    z = fnp.concatenate([radius * fnp.cos(angle), radius * fnp.sin(angle)])
    return fnp.reshape(z[:size] if 2 * half != size else z, shape)


def gumbel(key, shape=(), dtype=None):
    """Standard Gumbel floats: ``-log(-log(u))`` for ``u`` uniform in (0, 1).

    Example:
        >>> import functorch_lite as fl
        >>> g = fl.random.gumbel(fl.random.key(0), (10000,))
        >>> abs(float(g.mean()) - 0.5772) < 0.05  # the Euler-Mascheroni constant
        True
    """
    key = _check_key("gumbel", key)
    shape = _shape("gumbel", shape)
    dtype = _float_dtype("gumbel", dtype)
    return _gumbel(key, shape, dtype)


def _gumbel(key, shape, dtype):
    u = fnp.maximum(_unit_uniform(key, shape, dtype), float(np.finfo(dtype).tiny))
    return -fnp.log(-fnp.log(u))


def bernoulli(key, p=0.5, shape=None):
    """Booleans that are True with probability ``p`` (shape: ``p``'s when None).

    Example:
        >>> import functorch_lite as fl
        >>> b = fl.random.bernoulli(fl.random.key(0), 0.25, (10000,))
        >>> b.dtype, abs(float(b.mean()) - 0.25) < 0.02
        (dtype('bool'), True)
    """
    key = _check_key("bernoulli", key)
    aval = aval_of(p)
    dtype = aval.dtype if aval.dtype.kind == "f" and not aval.weak_type else \
        settings.float_dtype
    p = _as_float(p, dtype)
    if shape is None:
        shape = aval.shape
    else:
        shape = _shape("bernoulli", shape)
        _check_broadcasts_to("bernoulli", shape, p=p)
    return _unit_uniform(key, shape, dtype) < p


def randint(key, shape, minval, maxval, dtype=None):
    """Uniform integers in ``[minval, maxval)`` (``minval`` when ``maxval <= minval``).

    ``dtype`` defaults to int64. ``minval``/``maxval`` broadcast to ``shape``; Python
    ints are clipped into ``dtype``'s range. Each value is 64 random bits modulo the span,
    so the bias is at most span / 2**64.

    Example:
        >>> import functorch_lite as fl
        >>> dice = fl.random.randint(fl.random.key(0), (1000,), 1, 7)
        >>> dice.dtype, int(dice.min()), int(dice.max())
        (dtype('int64'), 1, 6)
    """
    key = _check_key("randint", key)
    shape = _shape("randint", shape)
    dtype = np.dtype(np.int64 if dtype is None else dtype)
    if dtype.kind not in "iu":
        raise TypeError(f"fl.random.randint: dtype must be an integer dtype, got {dtype}; "
                        "use fl.random.uniform for floats")
    _check_broadcasts_to("randint", shape, minval=minval, maxval=maxval)
    low, high = _int_bound(minval, dtype), _int_bound(maxval, dtype)
    # In uint64 arithmetic, which wraps, high - low is the span even across zero, and
    # low + offset wraps back to the signed result. An empty range gives low, as in JAX.
    if isinstance(low, int) and isinstance(high, int):
        span = (high - low) % 2**64 if high > low else 1
    else:
        span = fnp.where(high <= low, 1, _to_uint64(high) - _to_uint64(low))
    offset = bind(random_bits_p, key, shape=shape, bit_width=64) % span
    return fnp.astype(offset + _to_uint64(low), dtype)


def _int_bound(value, dtype):
    """A bound of randint: a Python int clipped into ``dtype``, or an integer array."""
    if isinstance(value, (int, np.integer)):
        info = np.iinfo(dtype)
        return min(max(int(value), int(info.min)), int(info.max))
    value = fnp.asarray(value)
    if value.dtype.kind not in "iub":
        raise TypeError(f"fl.random.randint: minval and maxval must be integers, got "
                        f"{value.dtype}")
    return value if value.dtype == dtype else fnp.astype(value, dtype)


def _to_uint64(bound):
    return bound % 2**64 if isinstance(bound, int) else fnp.astype(bound, np.uint64)


# --------------------------------------------------------------------------------------
# Permutations and choices
# --------------------------------------------------------------------------------------
def _random_order(key, shape, axis=-1):
    """Indices that shuffle ``axis`` of ``shape``: an argsort of 64-bit random keys (ties,
    which would bias the order, are vanishingly rare)."""
    return fnp.argsort(bind(random_bits_p, key, shape=shape, bit_width=64), axis=axis)


def _population_size(fn_name, x):
    """``int(x)`` when ``x`` is a concrete integer scalar, else None (an array)."""
    if isinstance(x, (int, np.integer)):
        return int(x)
    aval = aval_of(x)
    if aval.shape == () and aval.dtype.kind in "iu":
        if isinstance(x, Tracer):
            raise TypeError(f"fl.random.{fn_name}: the population size must be a concrete "
                            "int, not a traced value")
        return int(x)
    return None


def permutation(key, x, axis=0, independent=False):
    """A random permutation of ``range(x)`` (int ``x``), or ``x`` shuffled along ``axis``.

    With ``independent=True`` each slice along ``axis`` is shuffled on its own.

    Example:
        >>> import functorch_lite as fl
        >>> perm = fl.random.permutation(fl.random.key(0), 5)
        >>> sorted(perm.tolist())
        [0, 1, 2, 3, 4]
    """
    key = _check_key("permutation", key)
    n = _population_size("permutation", x)
    if n is not None:
        if n < 0:
            raise ValueError(f"fl.random.permutation: x must be non-negative, got {n}")
        return _random_order(key, (n,))
    x = fnp.asarray(x)
    if x.ndim == 0:
        raise TypeError("fl.random.permutation: x must be an int or an array with at least "
                        f"one dimension, got a {aval_of(x).str_short()} scalar")
    axis = _axis("permutation", axis, x.ndim)
    if independent:
        order = _random_order(key, x.shape, axis)
        return fnp.take_along_axis(x, order, axis=axis)
    return fnp.take(x, _random_order(key, (x.shape[axis],)), axis=axis)


def _axis(fn_name, axis, ndim):
    if not -ndim <= axis < ndim:
        raise ValueError(f"fl.random.{fn_name}: axis {axis} is out of range for an array "
                         f"with {ndim} dimensions")
    return axis % ndim


def choice(key, a, shape=(), replace=True, p=None, axis=0):
    """Random samples of ``a`` (an int ``n`` means ``arange(n)``) along ``axis``.

    Args:
        key: a PRNG key.
        a: an int, or an array to sample slices of along ``axis``.
        shape: the shape of the sample (the result has ``a``'s other axes around it).
        replace: sample with replacement; without it, ``prod(shape)`` must not exceed
            the population.
        p: probabilities of each entry of the population (default: uniform).
        axis: the axis of ``a`` to sample along.

    Example:
        >>> import functorch_lite as fl
        >>> draw = fl.random.choice(fl.random.key(0), 10, (4,), replace=False)
        >>> draw.shape, len(set(draw.tolist()))
        ((4,), 4)
    """
    key = _check_key("choice", key)
    shape = _shape("choice", shape)
    n = _population_size("choice", a)
    population = None  # None: sample the indices themselves
    if n is None:
        population = fnp.asarray(a)
        if population.ndim == 0:
            raise TypeError("fl.random.choice: a must be an int or an array with at least "
                            "one dimension")
        axis = _axis("choice", axis, population.ndim)
        n = population.shape[axis]
    size = math.prod(shape)
    if n <= 0 and size > 0:
        raise ValueError("fl.random.choice: cannot sample from an empty population")
    if not replace and size > n:
        raise ValueError(f"fl.random.choice: cannot take {size} samples (shape {shape}) from "
                         f"a population of {n} without replacement; pass replace=True or a "
                         "smaller shape")
    if p is None:
        if replace:
            index = randint(key, shape, 0, n)
        else:
            index = fnp.reshape(_random_order(key, (n,))[:size], shape)
    else:
        index = _weighted_choice(key, shape, replace, p, n, size)
    return index if population is None else fnp.take(population, index, axis=axis)


def _weighted_choice(key, shape, replace, p, n, size):
    p = fnp.asarray(p)
    if p.dtype.kind != "f":
        p = fnp.astype(p, settings.float_dtype)
    if p.shape != (n,):
        raise ValueError(f"fl.random.choice: p has shape {p.shape}, but the population has "
                         f"{n} entries; p needs shape ({n},)")
    if replace:
        # Inverse CDF: r is uniform in (0, total], and searchsorted finds the entry whose
        # cumulative interval holds it (entries with p == 0 have empty intervals).
        cdf = fnp.cumsum(p)
        r = cdf[-1] * (1 - _unit_uniform(key, shape, p.dtype))
        return fnp.searchsorted(cdf, r)
    # Without replacement: the top-k of log(p) + Gumbel noise (the Gumbel-top-k trick).
    positive = p > 0
    log_p = fnp.where(positive, fnp.log(fnp.where(positive, p, 1)), -np.inf)
    scores = log_p + _gumbel(key, (n,), p.dtype)
    return fnp.reshape(fnp.argsort(-scores)[:size], shape)


def categorical(key, logits, axis=-1, shape=None):
    """Indices drawn from ``softmax(logits)`` along ``axis`` (the Gumbel-max trick).

    ``shape`` defaults to ``logits``' shape without ``axis``; a given ``shape`` must end
    with that batch shape (extra leading axes draw more samples).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> logits = fnp.log(fnp.array([0.1, 0.2, 0.7]))
        >>> draws = fl.random.categorical(fl.random.key(0), logits, shape=(5000,))
        >>> abs(float((draws == 2).mean()) - 0.7) < 0.03
        True
    """
    key = _check_key("categorical", key)
    logits = fnp.asarray(logits)
    if logits.ndim == 0:
        raise ValueError("fl.random.categorical: logits must have at least one dimension")
    if logits.dtype.kind != "f":
        logits = fnp.astype(logits, settings.float_dtype)
    axis = _axis("categorical", axis, logits.ndim)
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    if shape is None:
        shape = batch_shape
    else:
        shape = _shape("categorical", shape)
        if shape[len(shape) - len(batch_shape):] != batch_shape or len(shape) < len(
                batch_shape):
            raise ValueError(f"fl.random.categorical: shape {shape} must end with the "
                             f"batch shape of logits {batch_shape} (logits' shape "
                             f"{logits.shape} without axis {axis})")
    prefix = shape[:len(shape) - len(batch_shape)]
    noise = _gumbel(key, prefix + logits.shape, logits.dtype)
    return fnp.argmax(noise + logits, axis=axis - logits.ndim)


def truncated_normal(key, lower, upper, shape=None, dtype=None):
    """Normal floats conditioned on ``lower <= x <= upper`` (by the inverse CDF).

    ``shape`` defaults to the broadcast shape of ``lower`` and ``upper``. Differentiable
    with respect to the bounds.

    Example:
        >>> import functorch_lite as fl
        >>> x = fl.random.truncated_normal(fl.random.key(0), -1.0, 2.0, (1000,))
        >>> x.dtype, bool((x >= -1).all() and (x <= 2).all())
        (dtype('float32'), True)
    """
    key = _check_key("truncated_normal", key)
    dtype = _float_dtype("truncated_normal", dtype)
    lower, upper = _as_float(lower, dtype), _as_float(upper, dtype)
    if shape is None:
        shape = np.broadcast_shapes(aval_of(lower).shape, aval_of(upper).shape)
    else:
        shape = _shape("truncated_normal", shape)
        _check_broadcasts_to("truncated_normal", shape, lower=lower, upper=upper)
    sqrt2 = math.sqrt(2)
    # Uniform between the CDF values of the bounds, mapped back by the inverse CDF
    # (Phi(x) = (1 + erf(x / sqrt 2)) / 2, so the 1/2s cancel).
    a, b = _erf(lower / sqrt2), _erf(upper / sqrt2)
    u = a + (b - a) * _unit_uniform(key, shape, dtype)
    x = sqrt2 * bind(erfinv_p, u)
    # Rounding can land a hair outside the bounds (or on an infinite bound): clamp, with
    # the bounds constant so the derivative flows through the formula above.
    big = float(np.finfo(dtype).max)
    return fnp.clip(x, _constant_max(lower, -big), _constant_min(upper, big))


def _erf(x):
    return math.erf(x) if isinstance(x, float) else bind(erf_p, x)


def _constant_max(x, bound):
    return max(x, bound) if isinstance(x, float) else stop_gradient(fnp.maximum(x, bound))


def _constant_min(x, bound):
    return min(x, bound) if isinstance(x, float) else stop_gradient(fnp.minimum(x, bound))
