"""jit vs eager for every primitive spec (see ``specs/``), and for random programs.

* Every spec: ``jit(fn)(*args)`` equals ``fn(*args)`` (shapes, dtypes and values), and a
  second call with new values of the same shapes hits the cache (no retrace).
* Random programs (hypothesis-built chains of elementwise ops and reductions) give the
  same result eagerly and jitted, and under the compositions jit(grad), grad(jit),
  vmap(jit) and jit(vmap(grad)).
"""


import collections

import numpy as np
import pytest
import specs
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite.jit.graph import typecheck

specs.load_all()

ALL = specs.SPECS


def _ids(specs_):
    return [s.name for s in specs_]


def _np_out(out):
    return [np.asarray(o) for o in fl.tree.leaves(out)]


def _valid(s, args):
    check = s.extra.get("valid")
    return check is None or check(*args)


def _assert_same(name, got, want, rtol, atol):
    assert len(got) == len(want), f"{name}: jit returned {len(got)} outputs, eager {len(want)}"
    for g, w in zip(got, want):
        assert g.shape == w.shape, f"{name}: jit shape {g.shape} != eager {w.shape}"
        assert g.dtype == w.dtype, f"{name}: jit dtype {g.dtype} != eager {w.dtype}"
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("s", ALL, ids=_ids(ALL))
@settings(max_examples=10)  # one jit trace per example; the other properties draw more
@given(data=st.data())
def test_jit_matches_eager(s, data):
    dtype = data.draw(st.sampled_from(s.dtypes), label="dtype")
    args = data.draw(s.args(dtype), label="args")
    assume(_valid(s, args))
    with np.errstate(all="ignore"):
        want = _np_out(s.fn(*args))
        jitted = fl.jit(s.fn)
        got = _np_out(jitted(*args))
        _assert_same(s.name, got, want, max(s.rtol, 1e-6), s.atol)
        # Same shapes, other values: the compiled function is reused.
        again = data.draw(s.args(dtype), label="more args")
        if _valid(s, again) and [np.shape(a) for a in args] == [np.shape(b) for b in again]:
            _assert_same(s.name, _np_out(jitted(*again)), _np_out(s.fn(*again)),
                         max(s.rtol, 1e-6), s.atol)
            assert jitted.trace_count == 1, jitted.retrace_reasons


# --------------------------------------------------------------------------------------
# Random programs
# --------------------------------------------------------------------------------------
UNARY = {"sin": fnp.sin, "cos": fnp.cos, "tanh": fnp.tanh, "exp_small": lambda x: fnp.exp(
    x * 0.1), "square": fnp.square, "neg": fnp.negative, "softplus": lambda x: fnp.log1p(
    fnp.exp(-fnp.abs(x))) + fnp.maximum(x, 0.0)}
BINARY = {"add": fnp.add, "sub": fnp.subtract, "mul": fnp.multiply,
          "max": fnp.maximum, "scaled": lambda a, b: a * 0.5 + b * 2.0 + 1.0}
REDUCE = {"sum0": lambda x: fnp.sum(x, axis=0, keepdims=True),
          "mean1": lambda x: fnp.mean(x, axis=1, keepdims=True),
          "max_all": lambda x: fnp.max(x) + 0.0 * x}

op_names = st.one_of(st.sampled_from(sorted(UNARY)).map(lambda n: ("u", n)),
                     st.sampled_from(sorted(BINARY)).map(lambda n: ("b", n)),
                     st.sampled_from(sorted(REDUCE)).map(lambda n: ("r", n)))


@st.composite
def programs(draw):
    """A list of steps; each reads one or two earlier values and appends its result."""
    steps = []
    for k in range(draw(st.integers(1, 8))):
        kind, name = draw(op_names)
        a = draw(st.integers(0, k + 1))  # values: the two inputs, then each step's result
        b = draw(st.integers(0, k + 1))
        steps.append((kind, name, a, b))
    return steps


def run(program, x, y):
    values = [x, y]
    for kind, name, a, b in program:
        if kind == "u":
            values.append(UNARY[name](values[a]))
        elif kind == "b":
            values.append(BINARY[name](values[a], values[b]))
        else:
            values.append(REDUCE[name](values[a]) + values[b])
    return fnp.sum(values[-1] * values[-1]) * 0.1 + fnp.sum(values[-2])


def _xy(seed, shape=(3, 4)):
    rng = np.random.RandomState(seed)
    return (fnp.asarray(rng.uniform(-1, 1, shape)), fnp.asarray(rng.uniform(-1, 1, shape)))


def _close(a, b):
    for g, w in zip(fl.tree.leaves(a), fl.tree.leaves(b)):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12, atol=1e-12)


@given(program=programs(), seed=st.integers(0, 1000))
def test_random_programs_jit_matches_eager(program, seed):
    x, y = _xy(seed)
    f = lambda x, y: run(program, x, y)  # noqa: E731
    _close(fl.jit(f)(x, y), f(x, y))
    typecheck(fl.make_graph(f)(x, y))
    typecheck(fl.make_graph(f, optimized=False)(x, y))


@given(program=programs(), seed=st.integers(0, 1000))
def test_random_programs_under_compositions(program, seed):
    x, y = _xy(seed)
    f = lambda x, y: run(program, x, y)  # noqa: E731
    want_grad = fl.grad(f)(x, y)
    _close(fl.jit(fl.grad(f))(x, y), want_grad)
    _close(fl.grad(fl.jit(f))(x, y), want_grad)
    xs, ys = fnp.stack([x, x * 0.5]), fnp.stack([y, -y])
    want_vmap = fl.vmap(f)(xs, ys)
    _close(fl.vmap(fl.jit(f))(xs, ys), want_vmap)
    want_vg = fl.vmap(fl.grad(f))(xs, ys)
    _close(fl.jit(fl.vmap(fl.grad(f)))(xs, ys), want_vg)
    _close(fl.vmap(fl.jit(fl.grad(f)))(xs, ys), want_vg)


# --------------------------------------------------------------------------------------
# The fast call path: any nesting of dicts, lists, tuples and namedtuples of Arrays
# --------------------------------------------------------------------------------------
Pair = collections.namedtuple("Pair", ["first", "second"])

_ARRAYS = st.builds(
    lambda shape, dtype, seed: fnp.asarray(
        np.random.default_rng(seed).standard_normal(shape).astype(dtype)),
    st.lists(st.integers(1, 3), max_size=2).map(tuple),
    st.sampled_from([np.float32, np.float64]), st.integers(0, 2**16))
_KEYS = st.sampled_from(["a", "b", "c", "w", "bias"])
_TREES = st.recursive(
    _ARRAYS,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.lists(children, min_size=1, max_size=3).map(tuple),
        st.dictionaries(_KEYS, children, min_size=1, max_size=3),
        st.tuples(children, children).map(lambda p: Pair(*p))),
    max_leaves=8)


def _reinserted(tree):
    """The same tree with every dict's keys inserted in reverse order."""
    if type(tree) is dict:
        return {k: _reinserted(tree[k]) for k in reversed(list(tree))}
    if type(tree) in (list, tuple):
        return type(tree)(_reinserted(t) for t in tree)
    if type(tree) is Pair:
        return Pair(*(_reinserted(t) for t in tree))
    return tree


@settings(max_examples=40, deadline=None)
@given(tree=_TREES, donate=st.booleans())
def test_fast_call_path_matches_eager_on_any_container_nesting(tree, donate):
    """A jitted function of a pytree gives the eager result with the same structure on the
    first call (general path) and later ones (fast path), whatever the dict insertion
    order, and traces once per structure; with donation too."""
    def f(t):
        leaves = fl.tree.leaves(t)
        return fl.tree.map(lambda x: x * 2.0 + leaves[0].sum(), t)

    jitted = fl.jit(f, donate_argnums=0 if donate else ())
    for attempt in range(3):
        arg = _reinserted(tree) if attempt == 2 else tree
        arg = fl.tree.map(lambda x: fnp.asarray(np.array(x)), arg)  # fresh, donatable
        want = f(arg)
        got = jitted(arg)
        assert fl.tree.structure(got) == fl.tree.structure(want)
        for g, w in zip(fl.tree.leaves(got), fl.tree.leaves(want)):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)
    assert jitted.trace_count == 1
