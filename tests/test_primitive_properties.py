"""Every property over every primitive spec (see ``specs/``).

* impl vs NumPy: values, shapes and dtypes, over shapes, broadcasting and dtypes;
* jvp vs central finite differences (float64);
* vjp vs jvp: <vjp(u), v> == <u, jvp(v)> (float64);
* second order: the same checks on the derivative functions (fl.debug.check_grads);
* vmap vs a Python loop over examples, with each argument mapped over a random axis or
  not mapped at all (the examples are shuffles of one drawn input, so they stay valid
  inputs: same value set, same shape).

The jit property joins these when the jit lands.
"""


import numpy as np
import pytest
import specs
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import functorch_lite as fl
from functorch_lite import _compiled_backward, autodiff
from functorch_lite.core import registry

specs.load_all()

ALL = specs.SPECS
DIFF = [s for s in ALL if s.diff_argnums != () and "float64" in s.dtypes]

# Primitives tested by their own files rather than by a spec.
TESTED_ELSEWHERE = {"stop_gradient", "custom_vjp_call", "custom_jvp_call", "checkpoint_call"}


def _ids(specs_):
    return [s.name for s in specs_]


def _np_out(out):
    return [np.asarray(o) for o in fl.tree.leaves(out)]


def _valid(s, args):
    check = s.extra.get("valid")
    return check is None or check(*args)


@pytest.mark.parametrize("s", ALL, ids=_ids(ALL))
@given(data=st.data())
def test_impl_matches_numpy(s, data):
    dtype = data.draw(st.sampled_from(s.dtypes), label="dtype")
    args = data.draw(s.args(dtype), label="args")
    assume(_valid(s, args))
    with np.errstate(all="ignore"):
        want = s.ref(*args)
    got = s.fn(*args)
    want_leaves = [np.asarray(w) for w in (want if isinstance(want, (tuple, list)) else
                                          [want])]
    got_leaves = _np_out(got)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert g.shape == w.shape, f"{s.name}: shape {g.shape} != numpy's {w.shape}"
        if s.check_dtype:
            assert g.dtype == w.dtype, f"{s.name}: dtype {g.dtype} != numpy's {w.dtype}"
        rtol = s.rtol if g.dtype != np.float32 else max(s.rtol, 1e-5)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=s.atol, equal_nan=True,
                                   err_msg=s.name)


def _float_args(s, args):
    nums = s.diff_argnums if s.diff_argnums is not None else tuple(
        i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f")
    return nums


def _closed_over(s, args, nums):
    """``s.fn`` as a function of the differentiated arguments only."""
    def f(*dargs):
        full = list(args)
        for n, d in zip(nums, dargs):
            full[n] = d
        return s.fn(*full)
    return f


@pytest.mark.parametrize("order", [1, 2], ids=["first", "second"])
@pytest.mark.parametrize("s", DIFF, ids=_ids(DIFF))
@given(data=st.data())
def test_derivatives_match_finite_differences(s, order, data):
    """jvp vs central differences and <vjp(u), v> == <u, jvp(v)>, to ``order``; the second
    order checks the derivative rules' own derivatives (looser: FD of an FD-checked map)."""
    args = data.draw(s.args("float64"), label="args")
    assume(_valid(s, args))
    nums = _float_args(s, args)
    assume(nums)
    f = _closed_over(s, args, nums)
    atol, rtol, eps = s.grad_atol, s.grad_rtol, s.fd_eps
    if order == 2:
        atol, rtol, eps = max(atol, 1e-5), max(rtol, 1e-4), max(eps, 1e-5)
    fl.debug.check_grads(f, tuple(args[n] for n in nums), order=order, modes=("fwd", "rev"),
                         atol=atol, rtol=rtol, eps=eps)


def _draw_pullback_case(s, data):
    """``(f, differentiated args, seed of the cotangent)`` for spec ``s``, in float32 or
    float64."""
    dtype = data.draw(st.sampled_from([d for d in s.dtypes if d in ("float32", "float64")]),
                      label="dtype")
    args = data.draw(s.args(dtype), label="args")
    assume(_valid(s, args))
    nums = _float_args(s, args)
    assume(nums)
    f = _closed_over(s, args, nums)
    dargs = tuple(fl.numpy.asarray(args[n]) for n in nums)
    seed = data.draw(st.integers(0, 2**16), label="seed")
    return f, dargs, seed


@pytest.mark.parametrize("s", DIFF, ids=_ids(DIFF))
@given(data=st.data())
def test_rules_on_buffers_match_rules_on_arrays(s, data):
    """Eager reverse mode runs rules on NumPy buffers (``Primitive.vjp_on_buffers``): the
    cotangents, their shapes and dtypes must be those of the same rules run on Arrays."""
    f, dargs, seed = _draw_pullback_case(s, data)

    def pull(on_buffers):
        autodiff._RULES_ON_BUFFERS = on_buffers
        try:
            return _pull(f, dargs, seed)
        finally:
            autodiff._RULES_ON_BUFFERS = True

    _assert_same_cotangents(s, pull(True), pull(False))


def _pull(f, dargs, seed, compiled=False, times=1):
    """The cotangents of ``f`` at ``dargs`` for a random cotangent (from ``seed``), from
    the last of ``times`` pullbacks; the backward pass compiled or not."""
    autodiff._COMPILE_BACKWARD = compiled
    try:
        with np.errstate(all="ignore"):
            out, pullback = fl.vjp(f, *dargs)
            rng = np.random.default_rng(seed)
            ct = fl.tree.map(lambda o: fl.numpy.asarray(
                rng.standard_normal(np.shape(o)).astype(np.asarray(o).dtype)), out)
            for _ in range(times):
                cts = pullback(ct)
            return _np_out(cts)
    finally:
        autodiff._COMPILE_BACKWARD = True


def _assert_same_cotangents(s, got, want):
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype, (s.name, g.shape, w.shape, g.dtype,
                                                         w.dtype)
        np.testing.assert_allclose(g, w, rtol=1e-6 if g.dtype == np.float32 else 1e-12,
                                   atol=0, equal_nan=True, err_msg=s.name)


@pytest.mark.parametrize("s", DIFF, ids=_ids(DIFF))
@settings(max_examples=10)
@given(data=st.data())
def test_compiled_backward_matches_rules(s, data):
    """A tape seen before runs as a compiled program (``_compiled_backward``): its
    cotangents, shapes and dtypes must be those of the rules run one by one."""
    f, dargs, seed = _draw_pullback_case(s, data)
    want = _pull(f, dargs, seed)
    # the first pullback records the tape's structure, the second compiles, the third reuses
    _compiled_backward.clear_cache()
    _assert_same_cotangents(s, _pull(f, dargs, seed, compiled=True, times=3), want)
    # every primitive's rules trace: a fallback to interpreting would pass unnoticed
    assert any(callable(p) for p in _compiled_backward._cache.values()), s.name


def _examples(x, rng, size):
    """``size`` shuffles of ``x`` (the first is ``x`` itself)."""
    x = np.asarray(x)
    out = [x]
    for _ in range(size - 1):
        out.append(rng.permutation(x.reshape(-1)).reshape(x.shape))
    return out


@pytest.mark.parametrize("s", ALL, ids=_ids(ALL))
@given(data=st.data())
def test_vmap_matches_loop(s, data):
    dtype = data.draw(st.sampled_from(s.dtypes), label="dtype")
    args = data.draw(s.args(dtype), label="args")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    rng = np.random.RandomState(seed)
    size = 3
    in_axes, batched, per_example = [], [], [[] for _ in range(size)]
    for a in args:
        a = np.asarray(a)
        choices = [None, 0, -1] + ([1] if a.ndim >= 1 else [])
        ax = data.draw(st.sampled_from(choices), label="in_axis")
        in_axes.append(ax)
        if ax is None:
            batched.append(a)
            for k in range(size):
                per_example[k].append(a)
        else:
            xs = _examples(a, rng, size)
            batched.append(np.stack(xs, axis=ax if ax >= 0 else a.ndim))
            for k in range(size):
                per_example[k].append(xs[k])
    assume(any(ax is not None for ax in in_axes))
    assume(all(_valid(s, ex) for ex in per_example))
    want = [_np_out(s.fn(*ex)) for ex in per_example]
    got = _np_out(fl.vmap(s.fn, in_axes=tuple(in_axes))(*batched))
    for i, g in enumerate(got):
        w = np.stack([w_k[i] for w_k in want])
        assert g.shape == w.shape, f"{s.name}: vmap shape {g.shape} != loop's {w.shape}"
        assert g.dtype == w.dtype, f"{s.name}: vmap dtype {g.dtype} != loop's {w.dtype}"
        np.testing.assert_allclose(g, w, rtol=max(s.rtol, 1e-6), atol=s.atol, equal_nan=True,
                                   err_msg=s.name)


def test_every_primitive_has_a_spec():
    covered = {name for s in ALL for name in s.covers}
    missing = sorted(set(registry) - covered - TESTED_ELSEWHERE)
    assert not missing, f"primitives with no test spec: {missing}"
