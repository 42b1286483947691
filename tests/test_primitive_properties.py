"""Every property over every primitive spec (see ``specs/``).

* impl vs NumPy: values, shapes and dtypes, over shapes, broadcasting and dtypes;
* jvp vs central finite differences (float64);
* vjp vs jvp: <vjp(u), v> == <u, jvp(v)> (float64);
* second order: the same checks on the derivative functions (fl.debug.check_grads).

vmap and jit properties join these when those transforms land.
"""

import importlib
import pkgutil

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import functorch_lite as fl
import specs
from functorch_lite.core import registry

for _mod in pkgutil.iter_modules(specs.__path__):
    importlib.import_module(f"specs.{_mod.name}")

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


@pytest.mark.parametrize("s", DIFF, ids=_ids(DIFF))
@given(data=st.data())
def test_derivatives_match_finite_differences(s, data):
    args = data.draw(s.args("float64"), label="args")
    assume(_valid(s, args))
    nums = _float_args(s, args)
    assume(nums)
    f = _closed_over(s, args, nums)
    fl.debug.check_grads(f, tuple(args[n] for n in nums), order=1, modes=("fwd", "rev"),
                         atol=s.grad_atol, rtol=s.grad_rtol, eps=s.fd_eps)


@pytest.mark.parametrize("s", DIFF, ids=_ids(DIFF))
@given(data=st.data())
def test_second_derivatives(s, data):
    args = data.draw(s.args("float64"), label="args")
    assume(_valid(s, args))
    nums = _float_args(s, args)
    assume(nums)
    f = _closed_over(s, args, nums)
    fl.debug.check_grads(f, tuple(args[n] for n in nums), order=2, modes=("fwd", "rev"),
                         atol=max(s.grad_atol, 1e-5), rtol=max(s.grad_rtol, 1e-4),
                         eps=max(s.fd_eps, 1e-5))


def test_every_primitive_has_a_spec():
    covered = {name for s in ALL for name in s.covers}
    missing = sorted(set(registry) - covered - TESTED_ELSEWHERE)
    assert not missing, f"primitives with no test spec: {missing}"
