"""Specs for the random primitives (threefry2x32, random_bits, erf, erfinv) and samplers.

The NumPy references are independent implementations: Threefry-2x32 on Python ints, one
element and one round at a time, straight from the paper; every sampler then applies its
documented formula to those reference bits. So the impl test checks the generator and
each sampler's layout of bits, and the vmap test checks that a batch of keys gives, per
key, exactly the eager draw.

Integer outputs are compared in 16-bit pieces (``_pieces``): the property tests compare
with a relative tolerance, which on a full 32-bit word would forgive differences of
thousands.
"""

import math
import statistics

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite.core import bind
from functorch_lite.primitives.random import erf_p, erfinv_p, threefry2x32_p
from specs import floats_in, spec, unary_args

_MASK = 0xFFFFFFFF
_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)


# --- references -------------------------------------------------------------------------
def threefry_ref(k0, k1, c0, c1):
    """Threefry-2x32 with 20 rounds on Python ints (Salmon et al., SC 2011)."""
    k0, k1, c0, c1 = (int(v) for v in (k0, k1, c0, c1))
    ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)
    x0, x1 = (c0 + ks[0]) & _MASK, (c1 + ks[1]) & _MASK
    for rnd in range(20):
        r = _ROTATIONS[rnd % 8]
        x0 = (x0 + x1) & _MASK
        x1 = (((x1 << r) | (x1 >> (32 - r))) & _MASK) ^ x0
        if rnd % 4 == 3:
            s = rnd // 4 + 1
            x0 = (x0 + ks[s % 3]) & _MASK
            x1 = (x1 + ks[(s + 1) % 3] + s) & _MASK
    return x0, x1


def threefry_array_ref(k0, k1, c0, c1):
    arrays = np.broadcast_arrays(k0, k1, c0, c1)
    pairs = [threefry_ref(*vals) for vals in zip(*(a.reshape(-1) for a in arrays), strict=True)]
    shape = arrays[0].shape
    return tuple(np.array([p[i] for p in pairs], np.uint32).reshape(shape) for i in (0, 1))


def bits_ref(key, shape, width):
    """The stream of ``key``: pair i is threefry(key, (0, i)); first words, then second."""
    size = math.prod(shape)
    n_pairs = (size * (2 if width == 64 else 1) + 1) // 2
    pairs = [threefry_ref(key[0], key[1], 0, i) for i in range(n_pairs)]
    words = [p[0] for p in pairs] + [p[1] for p in pairs]
    if width == 64:
        values = [(words[i] << 32) | words[n_pairs + i] for i in range(size)]
    else:
        values = [w >> (32 - width) for w in words[:size]]
    return np.array(values, dtype=f"uint{width}").reshape(shape)


def unit_uniform_ref(key, shape, dtype):
    dtype = np.dtype(dtype)
    mantissa = np.finfo(dtype).nmant + 1
    width = 32 if mantissa <= 32 else 64
    raw = bits_ref(key, shape, width) >> (width - mantissa)
    return raw.astype(dtype) * (2.0 ** -mantissa)


def normal_ref(key, shape, dtype):
    size = math.prod(shape)
    half = (size + 1) // 2
    u = unit_uniform_ref(key, (2, half), dtype)
    radius = np.sqrt(-2.0 * np.log1p(-u[0]))
    angle = (2 * math.pi) * u[1]
    z = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])
    return z[:size].reshape(shape)


def gumbel_ref(key, shape, dtype):
    u = np.maximum(unit_uniform_ref(key, shape, dtype), np.finfo(dtype).tiny)
    return -np.log(-np.log(u))


def randint_ref(key, shape, low, high, dtype=np.int64):
    low, high = int(low), int(high)
    span = (high - low) % 2**64 if high > low else 1
    raw = bits_ref(key, shape, 64).reshape(-1)
    return np.array([low + int(b) % span for b in raw], dtype).reshape(shape)


def random_order_ref(key, shape, axis=-1):
    return np.argsort(bits_ref(key, shape, 64), axis=axis, kind="stable")


def erf_ref(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


def erfinv_ref(x):
    inv_cdf = statistics.NormalDist().inv_cdf
    return np.vectorize(lambda v: inv_cdf((1 + v) / 2) / math.sqrt(2),
                        otypes=[np.float64])(x).astype(x.dtype)


def _pieces(bits):
    """Unsigned ints as a tuple of 16-bit pieces (exact under a relative tolerance)."""
    width = 8 * bits.dtype.itemsize
    if width <= 16:
        return (bits,)
    return tuple((bits >> shift) & 0xFFFF for shift in range(0, width, 16))


# --- strategies -------------------------------------------------------------------------
def _keys():
    return hnp.arrays(np.uint32, (2,), elements=st.integers(0, _MASK))


def _with_key(*others):
    """args(dtype) -> (key, *others(dtype))."""
    def args(dtype):
        return st.tuples(_keys(), *(other(dtype) for other in others))
    return args


def _floats(shape, lo, hi):
    return lambda dtype: hnp.arrays(dtype, shape, elements=floats_in(lo, hi))


def _ints(lo, hi):
    return lambda dtype: hnp.arrays(dtype, (), elements=st.integers(lo, hi))


def _threefry_args(dtype):
    return hnp.mutually_broadcastable_shapes(num_shapes=4, max_dims=2, max_side=3).flatmap(
        lambda bs: st.tuples(*(hnp.arrays(np.uint32, s, elements=st.integers(0, _MASK))
                               for s in bs.input_shapes)))


_EXACT = dict(rtol=0.0, atol=0.0, diff_argnums=())

# --- the generator ----------------------------------------------------------------------
spec("threefry2x32", lambda *a: sum((_pieces(y) for y in bind(threefry2x32_p, *a)), ()),
     lambda *a: sum((_pieces(y) for y in threefry_array_ref(*a)), ()),
     _threefry_args, dtypes=("uint32",), **_EXACT)

for _dtype in ("uint8", "uint16", "uint32", "uint64"):
    spec(f"random.bits[{_dtype}]",
         lambda k, _dtype=_dtype: _pieces(fl.random.bits(k, (2, 3), _dtype)),
         lambda k, _dtype=_dtype: _pieces(bits_ref(k, (2, 3), 8 * np.dtype(_dtype).itemsize)),
         _with_key(), dtypes=("uint32",), covers=("random_bits",), **_EXACT)
spec("random.bits[odd size]", lambda k: _pieces(fl.random.bits(k, (5,))),
     lambda k: _pieces(bits_ref(k, (5,), 32)), _with_key(), dtypes=("uint32",),
     covers=("random_bits",), **_EXACT)

# --- keys -------------------------------------------------------------------------------
spec("random.key", lambda seed: _pieces(fl.random.key(seed)),
     lambda seed: _pieces(np.array([(int(seed) % 2**64) >> 32, int(seed) & _MASK],
                                   np.uint32)),
     lambda dtype: st.tuples(_ints(-2**63, 2**63 - 1)(dtype)), dtypes=("int64",),
     covers=(), **_EXACT)
spec("random.split", lambda k: _pieces(fl.random.split(k, 3)),
     lambda k: _pieces(bits_ref(k, (3, 2), 32)), _with_key(), dtypes=("uint32",),
     covers=("random_bits",), **_EXACT)
spec("random.fold_in", lambda k, d: _pieces(fl.random.fold_in(k, d)),
     lambda k, d: _pieces(np.array(threefry_ref(k[0], k[1], 1, d), np.uint32)),
     _with_key(_ints(0, _MASK)), dtypes=("uint32",), covers=("threefry2x32",), **_EXACT)

# --- continuous samplers ----------------------------------------------------------------
spec("random.uniform",
     lambda k, lo, hi: fl.random.uniform(k, (2, 3), lo.dtype, lo, hi),
     lambda k, lo, hi: lo + (hi - lo) * unit_uniform_ref(k, (2, 3), lo.dtype),
     _with_key(_floats((), -3, 0), _floats((3,), 0.5, 3)), covers=("random_bits",))
for _dtype in ("float32", "float64"):
    spec(f"random.normal[{_dtype}]", lambda k, _dtype=_dtype: fl.random.normal(k, (7,), _dtype),
         lambda k, _dtype=_dtype: normal_ref(k, (7,), _dtype), _with_key(),
         dtypes=("uint32",), diff_argnums=(), covers=("random_bits",))
    spec(f"random.gumbel[{_dtype}]",
         lambda k, _dtype=_dtype: fl.random.gumbel(k, (2, 2), _dtype),
         lambda k, _dtype=_dtype: gumbel_ref(k, (2, 2), _dtype), _with_key(),
         dtypes=("uint32",), diff_argnums=(), covers=("random_bits",))


def _truncated_normal_ref(k, lo, hi):
    sqrt2 = math.sqrt(2)
    a, b = erf_ref(lo / sqrt2), erf_ref(hi / sqrt2)
    u = a + (b - a) * unit_uniform_ref(k, (4,), lo.dtype)
    return np.clip(sqrt2 * erfinv_ref(u), lo, hi)


spec("random.truncated_normal",
     lambda k, lo, hi: fl.random.truncated_normal(k, lo, hi, (4,), lo.dtype),
     _truncated_normal_ref, _with_key(_floats((), -2, -0.1), _floats((), 0.1, 2)),
     covers=("erf", "erfinv", "random_bits"), rtol=1e-5, grad_rtol=1e-4, grad_atol=1e-5)

# --- discrete samplers ------------------------------------------------------------------
spec("random.bernoulli", lambda k, p: fl.random.bernoulli(k, p),
     lambda k, p: unit_uniform_ref(k, p.shape, p.dtype) < p,
     _with_key(_floats((2, 3), 0, 1)), diff_argnums=(), covers=("random_bits",))
spec("random.randint",
     lambda k, lo, hi: fl.random.randint(k, (6,), lo, hi, dtype=lo.dtype),
     lambda k, lo, hi: randint_ref(k, (6,), lo, hi, lo.dtype),
     _with_key(_ints(-50, 50), _ints(-50, 50)), dtypes=("int64", "int32"),
     covers=("random_bits",), **_EXACT)
spec("random.permutation[int]", lambda k: fl.random.permutation(k, 6),
     lambda k: random_order_ref(k, (6,)), _with_key(), dtypes=("uint32",),
     covers=("random_bits",), **_EXACT)


def _matrix(dtype):
    return st.tuples(st.integers(3, 5), st.integers(1, 3)).flatmap(
        lambda shape: hnp.arrays(dtype, shape, elements=floats_in(-3, 3)))


spec("random.permutation", lambda k, x: fl.random.permutation(k, x),
     lambda k, x: x[random_order_ref(k, (x.shape[0],))], _with_key(_matrix),
     covers=("random_bits",))
spec("random.permutation[independent]",
     lambda k, x: fl.random.permutation(k, x, axis=1, independent=True),
     lambda k, x: np.take_along_axis(x, random_order_ref(k, x.shape, axis=1), axis=1),
     _with_key(_matrix), covers=("random_bits",))
spec("random.choice", lambda k, x: fl.random.choice(k, x, (2, 2)),
     lambda k, x: x[randint_ref(k, (2, 2), 0, x.shape[0])], _with_key(_matrix),
     covers=("random_bits",))
spec("random.choice[replace=False]",
     lambda k, x: fl.random.choice(k, x, (3,), replace=False, axis=0),
     lambda k, x: x[random_order_ref(k, (x.shape[0],))[:3]], _with_key(_matrix),
     covers=("random_bits",))
spec("random.choice[int]", lambda k: fl.random.choice(k, 10, (2, 3)),
     lambda k: randint_ref(k, (2, 3), 0, 10), _with_key(), dtypes=("uint32",),
     covers=("random_bits",), **_EXACT)


def _weighted_ref(k, x, w, replace):
    p = w / np.sum(w)
    if replace:
        cdf = np.cumsum(p)
        r = cdf[-1] * (1 - unit_uniform_ref(k, (4,), p.dtype))
        return x[np.searchsorted(cdf, r)]
    scores = np.log(p) + gumbel_ref(k, p.shape, p.dtype)
    return x[np.argsort(-scores, kind="stable")[:3]]


for _replace in (True, False):
    spec(f"random.choice[p, replace={_replace}]",
         lambda k, x, w, _replace=_replace: fl.random.choice(
             k, x, (4,) if _replace else (3,), replace=_replace, p=w / fnp.sum(w)),
         lambda k, x, w, _replace=_replace: _weighted_ref(k, x, w, _replace),
         _with_key(_floats((5,), -3, 3), _floats((5,), 0.1, 1)), diff_argnums=(1,),
         covers=("random_bits",))

spec("random.categorical", lambda k, logits: fl.random.categorical(k, logits),
     lambda k, logits: np.argmax(gumbel_ref(k, logits.shape, logits.dtype) + logits, -1),
     _with_key(_floats((3, 4), -2, 2)), diff_argnums=(), covers=("random_bits",))
spec("random.categorical[axis=0, shape]",
     lambda k, logits: fl.random.categorical(k, logits, axis=0, shape=(2, 4)),
     lambda k, logits: np.argmax(gumbel_ref(k, (2, 3, 4), logits.dtype) + logits, axis=1),
     _with_key(_floats((3, 4), -2, 2)), diff_argnums=(), covers=("random_bits",))

# --- special functions ------------------------------------------------------------------
spec("erf", lambda x: bind(erf_p, x), erf_ref, unary_args(-4, 4))
spec("erfinv", lambda x: bind(erfinv_p, x), erfinv_ref, unary_args(-0.9, 0.9),
     grad_rtol=1e-4, grad_atol=1e-5)
