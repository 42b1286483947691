"""fl.random: the generator, determinism under every transform, statistics, errors.

The samplers' exact values are checked against independent references in
``specs/random.py`` (and under vmap by the property tests); this file checks what a
reference cannot: known-answer vectors, that draws have the right distribution, that
keys derived by split/fold_in give independent streams, and the error messages.

Statistical tests use a fixed key, so they are deterministic; their bounds are wide
(about 5 standard errors, or a Kolmogorov-Smirnov level of 0.001), so they would fail
for a wrong distribution, not by bad luck.
"""

import math

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite.core import bind
from functorch_lite.primitives.random import random_bits_p, threefry2x32_p

KEY = fl.random.key(1234)
N = 200_000


def _np(x):
    return np.asarray(x)


def _ks_statistic(samples, cdf):
    """The Kolmogorov-Smirnov distance between the samples' empirical CDF and ``cdf``."""
    x = np.sort(np.asarray(samples, np.float64))
    n = x.size
    f = cdf(x)
    return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


_KS_LIMIT = 1.95  # sqrt(n) * D exceeds this with probability 0.001 for the right CDF


def _normal_cdf(x):
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, counter, expected", [
    # Known-answer vectors of Threefry-2x32-20 from the Random123 distribution.
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_threefry_known_answers(key, counter, expected):
    words = [np.array([v], np.uint32) for v in key + counter]
    y0, y1 = bind(threefry2x32_p, *words)
    assert (int(y0[0]), int(y1[0])) == expected


def test_large_draws_cross_cpu_block_boundaries_consistently():
    # random_bits hashes its counters in blocks on the CPU; the result must be the hash of
    # all counters at once.
    n_pairs = 3 * 2**16 + 5
    got = _np(fl.random.bits(KEY, (2 * n_pairs,)))
    k0, k1 = (np.uint32(w) for w in _np(KEY))
    y0, y1 = bind(threefry2x32_p, k0, k1, 0, np.arange(n_pairs, dtype=np.uint32))
    np.testing.assert_array_equal(got, np.concatenate([_np(y0), _np(y1)]))


def test_every_bit_is_fair():
    words = _np(fl.random.bits(KEY, (N,)))
    frequencies = [((words >> b) & 1).mean() for b in range(32)]
    np.testing.assert_allclose(frequencies, 0.5, atol=5 * 0.5 / math.sqrt(N))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
def test_bits_dtypes_cover_their_range(dtype):
    b = _np(fl.random.bits(KEY, (4096,), dtype))
    assert b.dtype == dtype
    top = np.iinfo(dtype).max
    assert b.max() > top * 0.99 and b.min() < top * 0.01


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed, words", [
    (0, [0, 0]), (42, [0, 42]), (2**32 + 5, [1, 5]), (-1, [2**32 - 1, 2**32 - 1]),
    (np.int32(7), [0, 7]), (2**64 - 1, [2**32 - 1, 2**32 - 1]),
])
def test_key_words(seed, words):
    k = fl.random.key(seed)
    assert isinstance(k, fl.Array) and k.dtype == np.uint32 and k.shape == (2,)
    assert k.tolist() == words


def test_traced_seeds_make_the_same_keys():
    seeds = np.array([0, 1, -5, 2**40], np.int64)
    batched = _np(fl.vmap(fl.random.key)(seeds))
    np.testing.assert_array_equal(batched, [_np(fl.random.key(int(s))) for s in seeds])


def test_split_keys_are_distinct_and_deterministic():
    keys = _np(fl.random.split(KEY, 1000))
    assert keys.shape == (1000, 2) and keys.dtype == np.uint32
    assert len({tuple(k) for k in keys}) == 1000
    np.testing.assert_array_equal(keys, _np(fl.random.split(KEY, 1000)))
    assert fl.random.split(KEY, (2, 3)).shape == (2, 3, 2)


def test_fold_in_gives_distinct_keys_unlike_the_stream():
    folded = {tuple(_np(fl.random.fold_in(KEY, d))) for d in range(1000)}
    assert len(folded) == 1000
    assert not folded & {tuple(k) for k in _np(fl.random.split(KEY, 1000))}
    traced = fl.vmap(lambda d: fl.random.fold_in(KEY, d))(np.arange(5, dtype=np.uint32))
    np.testing.assert_array_equal(traced, [_np(fl.random.fold_in(KEY, d)) for d in range(5)])


@pytest.mark.parametrize("derive", [
    lambda k: tuple(fl.random.split(k)),
    lambda k: (fl.random.fold_in(k, 0), fl.random.fold_in(k, 1)),
    lambda k: (k, fl.random.split(k)[0]),  # a parent and its child
], ids=["split", "fold_in", "parent-child"])
def test_derived_streams_are_uncorrelated(derive):
    a, b = derive(KEY)
    x, y = _np(fl.random.normal(a, (N,))), _np(fl.random.normal(b, (N,)))
    assert not np.array_equal(x, y)
    assert abs(np.corrcoef(x, y)[0, 1]) < 5 / math.sqrt(N)


# --------------------------------------------------------------------------------------
# Determinism under the transforms
# --------------------------------------------------------------------------------------
SAMPLERS = {
    "uniform": lambda k: fl.random.uniform(k, (3, 2), minval=-2.0, maxval=5.0),
    "normal": lambda k: fl.random.normal(k, (5,)),
    "normal64": lambda k: fl.random.normal(k, (5,), "float64"),
    "bernoulli": lambda k: fl.random.bernoulli(k, 0.3, (20,)),
    "randint": lambda k: fl.random.randint(k, (6,), -10, 10),
    "permutation": lambda k: fl.random.permutation(k, 8),
    "permute rows": lambda k: fl.random.permutation(k, fnp.arange(24.0).reshape(8, 3)),
    "choice": lambda k: fl.random.choice(k, 10, (4,), replace=False),
    "choice p": lambda k: fl.random.choice(k, 4, (12,), p=fnp.array([0.1, 0.2, 0.3, 0.4])),
    "categorical": lambda k: fl.random.categorical(k, fnp.zeros((8, 5))),
    "gumbel": lambda k: fl.random.gumbel(k, (4,)),
    "truncated_normal": lambda k: fl.random.truncated_normal(k, -1.0, 0.5, (6,)),
    "split": lambda k: fl.random.split(k, 3),
    "fold_in": lambda k: fl.random.fold_in(k, 17),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_same_key_same_values(name):
    draw = SAMPLERS[name]
    first = _np(draw(KEY))
    np.testing.assert_array_equal(first, _np(draw(fl.random.key(1234))))
    other = _np(draw(fl.random.key(99)))
    assert first.shape == other.shape and not np.array_equal(first, other)


@pytest.mark.parametrize("name", SAMPLERS)
def test_vmap_over_keys_equals_per_key_draws(name):
    draw = SAMPLERS[name]
    keys = fl.random.split(KEY, 4)
    batched = _np(fl.vmap(draw)(keys))
    np.testing.assert_array_equal(batched, np.stack([_np(draw(k)) for k in keys]))
    assert len({row.tobytes() for row in batched}) == 4  # independent per key


@pytest.mark.parametrize("name", SAMPLERS)
def test_jit_gives_the_eager_values(name):
    jit = getattr(fl, "jit", None)
    if jit is None:
        pytest.skip("fl.jit is not available yet")
    draw = SAMPLERS[name]
    np.testing.assert_array_equal(_np(jit(draw)(KEY)), _np(draw(KEY)))


def test_vmap_with_batch_axis_not_first_and_nested():
    def draw(k):
        return fl.random.normal(k, (2,))

    keys = fl.random.split(KEY, 3)
    got = fl.vmap(draw, in_axes=1)(_np(keys).T)  # the words on axis 0, the keys on axis 1
    np.testing.assert_array_equal(got, [_np(draw(k)) for k in keys])
    grid = fl.random.split(KEY, (3, 4))
    nested = fl.vmap(fl.vmap(draw))(grid)
    np.testing.assert_array_equal(nested, [[_np(draw(k)) for k in row] for row in grid])


def test_random_draws_inside_grad():
    noise = fl.random.normal(KEY, (3,))
    g = fl.grad(lambda x: fnp.sum(x * fl.random.normal(KEY, x.shape)))(fnp.ones(3))
    np.testing.assert_array_equal(g, noise)
    u = fl.random.uniform(KEY, (3,))
    g_lo = fl.grad(lambda lo: fnp.sum(fl.random.uniform(KEY, (3,), minval=lo, maxval=2.0)))
    np.testing.assert_allclose(g_lo(0.0), float(fnp.sum(1 - u)), rtol=1e-6)


def test_truncated_normal_bound_derivatives_match_finite_differences():
    def f(lo, hi):
        return fnp.sum(fl.random.truncated_normal(KEY, lo, hi, (5,), "float64"))

    lo, hi = np.float64(-0.5), np.float64(1.5)
    g_lo, g_hi = fl.grad(f, argnums=(0, 1))(lo, hi)
    eps = 1e-6
    np.testing.assert_allclose(g_lo, (float(f(lo + eps, hi)) - float(f(lo - eps, hi))) / (2 * eps),
                               rtol=1e-5)
    np.testing.assert_allclose(g_hi, (float(f(lo, hi + eps)) - float(f(lo, hi - eps))) / (2 * eps),
                               rtol=1e-5)


# --------------------------------------------------------------------------------------
# Dtypes
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["uniform", "normal", "gumbel"])
def test_default_float_dtype_follows_x64(sampler):
    fn = getattr(fl.random, sampler)
    assert fn(KEY, (2,)).dtype == np.float32
    with fl.config.enable_x64():
        assert fn(KEY, (2,)).dtype == np.float64
        assert fl.random.truncated_normal(KEY, -1.0, 1.0, (2,)).dtype == np.float64
    assert fn(KEY, (2,), "float64").dtype == np.float64
    assert fn(KEY, (2,), "float16").dtype == np.float16


def test_shapes():
    assert fl.random.normal(KEY).shape == ()
    assert fl.random.normal(KEY, 3).shape == (3,)
    assert fl.random.normal(KEY, (0, 4)).shape == (0, 4)
    assert fl.random.uniform(KEY, (2, 3), maxval=fnp.ones(3)).shape == (2, 3)
    assert fl.random.bernoulli(KEY, fnp.full((4, 2), 0.5)).shape == (4, 2)
    assert fl.random.truncated_normal(KEY, fnp.zeros(3), 1.0).shape == (3,)


# --------------------------------------------------------------------------------------
# Distributions
# --------------------------------------------------------------------------------------
def test_uniform_distribution():
    u = _np(fl.random.uniform(KEY, (N,)))
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / N)
    assert abs(u.var() - 1 / 12) < 5 * math.sqrt(1 / 180 / N)
    assert _ks_statistic(u, lambda x: x) * math.sqrt(N) < _KS_LIMIT
    scaled = _np(fl.random.uniform(KEY, (N,), minval=-3.0, maxval=1.0))
    assert scaled.min() >= -3 and scaled.max() < 1
    assert _ks_statistic(scaled, lambda x: (x + 3) / 4) * math.sqrt(N) < _KS_LIMIT


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_distribution(dtype):
    z = _np(fl.random.normal(KEY, (N,), dtype))
    assert z.dtype == dtype and np.isfinite(z).all()
    assert abs(z.mean()) < 5 / math.sqrt(N)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / N)
    assert _ks_statistic(z[:50_000], _normal_cdf) * math.sqrt(50_000) < _KS_LIMIT


def test_truncated_normal_distribution():
    lower, upper = -0.5, 2.0
    x = _np(fl.random.truncated_normal(KEY, lower, upper, (50_000,), "float64"))
    assert x.min() >= lower and x.max() <= upper
    a, b = _normal_cdf(lower), _normal_cdf(upper)
    assert _ks_statistic(x, lambda v: (_normal_cdf(v) - a) / (b - a)) * math.sqrt(
        x.size) < _KS_LIMIT
    tail = _np(fl.random.truncated_normal(KEY, 3.0, np.inf, (1000,)))
    assert np.isfinite(tail).all() and tail.min() >= 3


def test_gumbel_distribution():
    g = _np(fl.random.gumbel(KEY, (N,), "float64"))
    assert abs(g.mean() - np.euler_gamma) < 5 * math.sqrt(math.pi**2 / 6 / N)
    assert _ks_statistic(g[:50_000], lambda x: np.exp(-np.exp(-x))) * math.sqrt(50_000) < \
        _KS_LIMIT


@pytest.mark.parametrize("p", [0.0, 0.05, 0.5, 0.9, 1.0])
def test_bernoulli_frequency(p):
    b = _np(fl.random.bernoulli(KEY, p, (N,)))
    assert b.dtype == np.bool_
    assert abs(b.mean() - p) <= 5 * math.sqrt(p * (1 - p) / N)


def test_randint_range_and_uniformity():
    r = _np(fl.random.randint(KEY, (N,), -3, 7))
    assert r.dtype == np.int64 and r.min() == -3 and r.max() == 6
    counts = np.bincount(r + 3, minlength=10)
    expected = N / 10
    assert np.all(np.abs(counts - expected) < 5 * math.sqrt(expected))


def test_randint_bounds_and_dtypes():
    assert _np(fl.random.randint(KEY, (100,), 5, 5)).tolist() == [5] * 100  # as JAX
    assert _np(fl.random.randint(KEY, (100,), 5, 2)).tolist() == [5] * 100
    small = fl.random.randint(KEY, (1000,), 0, 3, dtype="int32")
    assert small.dtype == np.int32 and set(_np(small).tolist()) == {0, 1, 2}
    wide = _np(fl.random.randint(KEY, (1000,), -2**62, 2**62))
    assert wide.min() >= -2**62 and wide.max() < 2**62 and wide.min() < 0 < wide.max()
    clipped = _np(fl.random.randint(KEY, (1000,), -1000, 1000, dtype="int8"))
    assert clipped.min() >= -128 and clipped.max() <= 127
    per_row = _np(fl.random.randint(KEY, (3, 1000), fnp.array([[0], [10], [20]]), 15))
    assert per_row[0].max() < 15 and per_row[1].min() >= 10 and (per_row[2] == 20).all()


def test_permutation_is_a_permutation():
    perm = _np(fl.random.permutation(KEY, 1000))
    np.testing.assert_array_equal(np.sort(perm), np.arange(1000))
    assert not np.array_equal(perm, np.arange(1000))
    x = np.arange(20.0).reshape(5, 4)
    rows = _np(fl.random.permutation(KEY, x))
    assert sorted(map(tuple, rows)) == sorted(map(tuple, x))
    cols = _np(fl.random.permutation(KEY, x, axis=1))
    assert sorted(map(tuple, cols.T)) == sorted(map(tuple, x.T))
    independent = _np(fl.random.permutation(KEY, x, axis=1, independent=True))
    np.testing.assert_array_equal(np.sort(independent, axis=1), x)


def test_permutation_positions_are_uniform():
    keys = fl.random.split(KEY, 20_000)
    firsts = _np(fl.vmap(lambda k: fl.random.permutation(k, 5)[0])(keys))
    counts = np.bincount(firsts, minlength=5)
    assert np.all(np.abs(counts - 4000) < 5 * math.sqrt(4000))


def test_choice_without_replacement_has_no_duplicates():
    for n, size in [(10, 10), (100, 37), (1000, 999)]:
        draw = _np(fl.random.choice(KEY, n, (size,), replace=False))
        assert len(set(draw.tolist())) == size and draw.min() >= 0 and draw.max() < n
    x = np.arange(30.0).reshape(10, 3)
    picked = _np(fl.random.choice(KEY, x, (4,), replace=False, axis=0))
    assert picked.shape == (4, 3) and len({tuple(r) for r in picked}) == 4
    along_columns = fl.random.choice(KEY, x, (2,), replace=False, axis=1)
    assert along_columns.shape == (10, 2)


def test_choice_frequencies_follow_p():
    p = np.array([0.1, 0.0, 0.6, 0.3])
    draw = _np(fl.random.choice(KEY, 4, (N,), p=p))
    freq = np.bincount(draw, minlength=4) / N
    assert freq[1] == 0
    np.testing.assert_allclose(freq, p, atol=5 * math.sqrt(0.25 / N))
    uniform = np.bincount(_np(fl.random.choice(KEY, 4, (N,))), minlength=4) / N
    np.testing.assert_allclose(uniform, 0.25, atol=5 * math.sqrt(0.25 / N))


def test_weighted_choice_without_replacement():
    p = np.array([0.5, 0.0, 0.25, 0.25, 0.0])
    draw = _np(fl.random.choice(KEY, 5, (3,), replace=False, p=p))
    assert sorted(draw.tolist()) == [0, 2, 3]
    keys = fl.random.split(KEY, 20_000)
    firsts = _np(fl.vmap(lambda k: fl.random.choice(k, 5, (2,), replace=False, p=p)[0])(keys))
    np.testing.assert_allclose(np.bincount(firsts, minlength=5) / 20_000, p,
                               atol=5 * math.sqrt(0.25 / 20_000))


def test_categorical_frequencies_follow_softmax():
    logits = np.array([1.0, -0.5, 2.0, 0.0], np.float32)
    probs = np.exp(logits) / np.exp(logits).sum()
    draw = _np(fl.random.categorical(KEY, logits, shape=(N,)))
    np.testing.assert_allclose(np.bincount(draw, minlength=4) / N, probs,
                               atol=5 * math.sqrt(0.25 / N))
    batched = _np(fl.random.categorical(KEY, np.stack([logits, logits[::-1]]),
                                        shape=(N // 4, 2)))
    assert batched.shape == (N // 4, 2)
    np.testing.assert_allclose(np.bincount(batched[:, 1], minlength=4) / (N // 4),
                               probs[::-1], atol=5 * math.sqrt(1 / N))
    over_axis0 = fl.random.categorical(KEY, np.zeros((3, 5)), axis=0)
    assert over_axis0.shape == (5,) and _np(over_axis0).max() <= 2


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, 1.5, np.zeros(2, np.float32), np.zeros(3, np.uint32),
                                 np.array([1, 2]), "key"])
def test_a_non_key_is_a_type_error_naming_fl_random_key(bad):
    with pytest.raises(TypeError, match=r"fl\.random\.normal expects a PRNG key.*"
                                        r"fl\.random\.key\(seed\)"):
        fl.random.normal(bad, (2,))


def test_a_batch_of_keys_points_to_vmap():
    with pytest.raises(TypeError, match=r"batch of keys u32\[4,2\].*fl\.vmap"):
        fl.random.uniform(fl.random.split(KEY, 4), (2,))


@pytest.mark.parametrize("call, error, message", [
    (lambda: fl.random.normal(KEY, (2, -1)), ValueError, "negative dimension"),
    (lambda: fl.random.normal(KEY, (2.5,)), TypeError, "shape must be a tuple of ints"),
    (lambda: fl.random.normal(KEY, (2,), "int32"), TypeError, "floating-point dtype"),
    (lambda: fl.random.uniform(KEY, (3,), minval=fnp.zeros(2)), ValueError,
     r"minval has shape \(2,\).*\(3,\)"),
    (lambda: fl.random.randint(KEY, (3,), 0, 5, dtype="float32"), TypeError,
     "integer dtype"),
    (lambda: fl.random.randint(KEY, (3,), 0.5, 5), TypeError, "must be integers"),
    (lambda: fl.random.bits(KEY, (3,), "int32"), TypeError, "unsigned"),
    (lambda: fl.random.choice(KEY, 3, (4,), replace=False), ValueError,
     "cannot take 4 samples"),
    (lambda: fl.random.choice(KEY, 3, (2,), p=fnp.ones(4) / 4), ValueError,
     r"p needs shape \(3,\)"),
    (lambda: fl.random.choice(KEY, 0, (2,)), ValueError, "empty population"),
    (lambda: fl.random.permutation(KEY, fnp.float32(1.0)), TypeError, "at least one"),
    (lambda: fl.random.permutation(KEY, fnp.ones(3), axis=1), ValueError, "out of range"),
    (lambda: fl.random.categorical(KEY, fnp.zeros((2, 3)), shape=(4, 3)), ValueError,
     r"must end with the batch shape"),
    (lambda: fl.random.key(1.5), TypeError, "integer scalar"),
    (lambda: fl.random.key(2**64), ValueError, "64 bits"),
    (lambda: fl.random.fold_in(KEY, 2**32), ValueError, "32 bits"),
    (lambda: fl.random.fold_in(KEY, fnp.ones(2, "int32")), TypeError, "integer scalar"),
])
def test_error_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_random_bits_rejects_a_malformed_key():
    with pytest.raises(TypeError, match=r"random_bits: the key must be uint32\[\.\.\., 2\]"):
        bind(random_bits_p, np.zeros(3, np.uint32), shape=(2,), bit_width=32)
    with pytest.raises(ValueError, match="bit_width must be one of"):
        bind(random_bits_p, np.zeros(2, np.uint32), shape=(2,), bit_width=12)
