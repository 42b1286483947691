"""Random bits from a counter-based generator, and the special functions samplers need.

Threefry-2x32 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2,
3", SC 2011) is a keyed hash of a pair of 32-bit counters: 20 rounds of add, rotate and
xor, with the key injected every four rounds. Hashing the counters 0, 1, 2, ... under a key
gives that key's stream of bits. It is elementwise in the counters, so it is written once
with whole-array ``xp`` ops (no loop over elements) and runs unchanged on NumPy and CuPy;
being integer arithmetic, a key gives the same bits on every backend.

* ``threefry2x32(k0, k1, c0, c1) -> (y0, y1)``: the hash itself, broadcasting its four
  uint32 operands (``fl.random.fold_in`` uses it).
* ``random_bits(key, shape=, bit_width=)``: the stream of ``key`` (a uint32 array whose
  last axis holds the two key words; leading axes are a batch of keys, which is all its
  vmap rule needs).
* ``erf`` and ``erfinv``: elementwise, differentiable; ``truncated_normal`` samples by the
  inverse CDF with them. NumPy has neither, so they are computed here with ``xp`` ops.

Counters are 64-bit ``(c0, c1)`` pairs, and ``c0`` names what they are for:
``random_bits`` hashes ``(0, i)`` for its ``i``-th pair of words and ``fold_in`` hashes
``(1, data)``, so a folded-in key never equals a key of the stream itself.
"""

from __future__ import annotations

import math

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite.core import Primitive, ShapedArray, bind
from functorch_lite.primitives.rules import _elementwise_batch, broadcast_shapes_for, unary

__all__ = ["threefry2x32_p", "random_bits_p", "erf_p", "erfinv_p", "STREAM", "FOLD_IN"]

STREAM = 0   # c0 of the counters random_bits hashes
FOLD_IN = 1  # c0 of the counter fold_in hashes

# --------------------------------------------------------------------------------------
# Threefry-2x32, 20 rounds
# --------------------------------------------------------------------------------------
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))  # rounds 4i..4i+3 use _ROTATIONS[i % 2]
_KEY_PARITY = 0x1BD11BDA  # the third key word is k0 ^ k1 ^ this constant


def _threefry_into(xp, k0, k1, c0, c1, x0, x1):
    """Hash the counters ``(c0, c1)`` under the key ``(k0, k1)`` into ``x0``, ``x1``.

    ``x0`` and ``x1`` are uint32 buffers the other operands broadcast to; the rounds run
    in place on them, so a hash allocates one temporary for the rotations.
    """
    k2 = k0 ^ k1 ^ _KEY_PARITY
    schedule = (k0, k1, k2)
    xp.add(c0, k0, out=x0)
    xp.add(c1, k1, out=x1)
    spill = xp.empty_like(x1)
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 += x1
            xp.right_shift(x1, 32 - r, out=spill)  # rotate x1 left by r
            x1 <<= r
            x1 |= spill
            x1 ^= x0
        # Key injection: the schedule word plus the injection's number, kept as two adds
        # so a Python-int key word never overflows uint32.
        x0 += schedule[(group + 1) % 3]
        x1 += schedule[(group + 2) % 3]
        x1 += group + 1


def _shape_of(x):
    return tuple(getattr(x, "shape", ()))


def _threefry2x32_impl(xp, k0, k1, c0, c1):
    shape = np.broadcast_shapes(*(_shape_of(v) for v in (k0, k1, c0, c1)))
    x0 = xp.empty(shape, dtype=xp.uint32)
    x1 = xp.empty(shape, dtype=xp.uint32)
    _threefry_into(xp, k0, k1, c0, c1, x0, x1)
    return x0, x1


def _threefry2x32_abstract_eval(*avals):
    for aval in avals:
        if aval.dtype != np.uint32 and not (aval.weak_type and aval.dtype.kind == "i"):
            raise TypeError(
                f"threefry2x32: operands must be uint32 (or Python ints), got "
                f"{', '.join(a.str_short() for a in avals)}")
    out = ShapedArray(broadcast_shapes_for("threefry2x32", avals), np.uint32)
    return out, out


threefry2x32_p = Primitive(
    "threefry2x32", _threefry2x32_impl, _threefry2x32_abstract_eval,
    batch=_elementwise_batch(lambda *args: bind(threefry2x32_p, *args)),
    differentiable=False, multiple_results=True, emit=None)


# --------------------------------------------------------------------------------------
# random_bits: the stream of a key (or of each key in a batch)
# --------------------------------------------------------------------------------------
# On the CPU the rounds run over blocks of this many counters, so their working set stays
# in cache: twice as fast as whole-array passes for large draws. A GPU takes it in one go.
_CPU_BLOCK = 1 << 16
_BIT_WIDTHS = (8, 16, 32, 64)


def _random_bits_impl(xp, key, *, shape, bit_width):
    """``shape`` words of ``bit_width`` bits for each key in ``key[..., 2]``.

    Layout: the pair ``i`` of the stream is ``threefry(key, (0, i))``; its first words
    fill the first half of a block of 32-bit words, its second words the second half.
    64-bit words join the two words of one pair.
    """
    batch = tuple(key.shape[:-1])
    size = math.prod(shape)
    n_words = size * 2 if bit_width == 64 else size
    n_pairs = (n_words + 1) // 2
    if n_pairs >= 2**32:
        raise ValueError(f"random_bits: {size} values of {bit_width} bits exceed one key's "
                         "stream (2**33 words); split the key and draw in parts")
    keys = key.reshape(-1, 2)
    k0, k1 = keys[:, 0:1], keys[:, 1:2]
    words = xp.empty((keys.shape[0], 2 * n_pairs), dtype=xp.uint32)
    block = _CPU_BLOCK if xp is np else max(n_pairs, 1)
    for start in range(0, n_pairs, block):
        stop = min(start + block, n_pairs)
        counters = xp.arange(start, stop, dtype=xp.uint32)
        _threefry_into(xp, k0, k1, STREAM, counters, words[:, start:stop],
                       words[:, n_pairs + start:n_pairs + stop])
    if bit_width == 64:
        bits = words[:, :n_pairs].astype(xp.uint64)  # a fresh buffer: finish it in place
        bits <<= 32
        bits |= words[:, n_pairs:]
    else:
        bits = words[:, :size]
        if bit_width < 32:
            bits = xp.right_shift(bits, 32 - bit_width).astype(f"uint{bit_width}")
    return bits.reshape(batch + tuple(shape))


def _random_bits_abstract_eval(key, *, shape, bit_width):
    if key.dtype != np.uint32 or key.ndim < 1 or key.shape[-1] != 2:
        raise TypeError(f"random_bits: the key must be uint32[..., 2], got {key.str_short()}")
    if bit_width not in _BIT_WIDTHS:
        raise ValueError(f"random_bits: bit_width must be one of {_BIT_WIDTHS}, got "
                         f"{bit_width}")
    return ShapedArray(key.shape[:-1] + tuple(shape), np.dtype(f"uint{bit_width}"))


def _random_bits_batch(args, batch_dims, *, shape, bit_width):
    # Leading axes of the key are already a batch of keys: one call draws for all of them.
    (key,), (bdim,) = args, batch_dims
    if bdim != 0:
        key = fnp.moveaxis(key, bdim, 0)
    return bind(random_bits_p, key, shape=shape, bit_width=bit_width), 0


random_bits_p = Primitive(
    "random_bits", _random_bits_impl, _random_bits_abstract_eval,
    batch=_random_bits_batch, differentiable=False, emit=None)


# --------------------------------------------------------------------------------------
# erf and erfinv. Both compute in float64 and round to the input's float dtype.
# --------------------------------------------------------------------------------------
_SQRT_PI = math.sqrt(math.pi)
_SERIES_TERMS = 40   # with the split at 2.5, both expansions reach double precision
_FRACTION_TERMS = 40
_SPLIT = 2.5


def _float_dtype(dtype):
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _erf_and_erfc(xp, a):
    """``(erf(a), erfc(a))`` for ``a >= 0`` (float64), each accurate where it is small.

    Below the split: erf(a) = 2/sqrt(pi) exp(-a^2) sum_n (2a^2)^n a / (2n+1)!!, whose
    terms are all positive (no cancellation). Above it: Laplace's continued fraction
    erfc(a) = exp(-a^2)/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))). Both are
    evaluated from the innermost term out, on inputs clamped into their own range.
    """
    near = xp.minimum(a, _SPLIT)
    u = 2 * near * near
    series = xp.ones_like(u)
    for n in range(_SERIES_TERMS, 0, -1):
        series = 1 + u / (2 * n + 1) * series
    erf_near = (2 / _SQRT_PI) * xp.exp(-near * near) * near * series
    far = xp.maximum(a, _SPLIT)
    fraction = far
    for n in range(_FRACTION_TERMS, 0, -1):
        fraction = far + (n / 2) / fraction
    erfc_far = xp.exp(-far * far) / (_SQRT_PI * fraction)
    is_near = a < _SPLIT
    return (xp.where(is_near, erf_near, 1 - erfc_far),
            xp.where(is_near, 1 - erf_near, erfc_far))


def _erf_impl(xp, x):
    x = xp.asarray(x)
    dtype = _float_dtype(x.dtype)
    x64 = x.astype(xp.float64)
    erf_abs, _ = _erf_and_erfc(xp, xp.abs(x64))
    return xp.copysign(erf_abs, x64).astype(dtype)


# Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011), the
# single-precision version: a polynomial in w = -log(1 - x^2), two branches.
_GILES_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                  0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_GILES_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
               0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)
_FAR_TAIL = 5e-8  # Giles' range ends here, just past float32's largest value below 1


def _horner(coefficients, w):
    p = coefficients[0]
    for c in coefficients[1:]:
        p = c + p * w
    return p


def _erfinv_start(xp, a):
    """erfinv(a) for ``0 <= a < 1``: to float32 precision for float32 inputs, and to
    about 1e-4 relative in the far tail only float64 reaches."""
    central = xp.minimum(a, 1 - _FAR_TAIL)
    w = -xp.log((1 - central) * (1 + central))
    giles = xp.where(w < 5, _horner(_GILES_CENTRAL, w - 2.5),
                     _horner(_GILES_TAIL, xp.sqrt(w) - 3)) * central
    # Far tail: erfc(y) ~ exp(-y^2) / (sqrt(pi) y) (1 - 1/(2y^2)); solve for y^2 by
    # fixed-point iteration from y^2 = -log(1 - a).
    t = xp.minimum(1 - a, _FAR_TAIL)
    log_t = -xp.log(t)
    y = xp.sqrt(log_t)
    for _ in range(3):
        y = xp.sqrt(log_t - xp.log(_SQRT_PI * y) + xp.log1p(-0.5 / (y * y)))
    return xp.where(1 - a < _FAR_TAIL, y, giles)


def _erfinv_impl(xp, x):
    x = xp.asarray(x)
    dtype = _float_dtype(x.dtype)
    x64 = x.astype(xp.float64)
    a = xp.abs(x64)
    inside = xp.minimum(a, 1 - 2.0**-53)
    y = _erfinv_start(xp, inside)
    # The start is float32-accurate; for float64, two Newton steps (each doubles the
    # correct digits). Near 0 they solve erf(y) = a; in the tail log(erfc(y)) =
    # log(1 - a), which stays well conditioned where erfc(y) is tiny.
    tail = inside >= 0.5
    log_complement = xp.log1p(-inside)
    for _ in range(0 if dtype.itemsize <= 4 else 2):
        erf_y, erfc_y = _erf_and_erfc(xp, y)
        slope = (2 / _SQRT_PI) * xp.exp(-y * y)
        step = xp.where(tail, (log_complement - xp.log(erfc_y)) * erfc_y, erf_y - inside)
        y = y - step / slope
    y = xp.where(a == 1, xp.inf, xp.where(a > 1, xp.nan, y))
    return xp.copysign(y, x64).astype(dtype)


_TWO_OVER_SQRT_PI = 2 / _SQRT_PI

erf_p = unary("erf", _erf_impl, lambda x, y: _TWO_OVER_SQRT_PI * fnp.exp(-(x * x)))
erfinv_p = unary("erfinv", _erfinv_impl, lambda x, y: (_SQRT_PI / 2) * fnp.exp(y * y))
