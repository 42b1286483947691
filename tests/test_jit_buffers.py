"""Buffer planning and linear-algebra lowering in the jit (functorch_lite/jit/codegen.py,
functorch_lite/jit/api.py, the einsum/matmul code in functorch_lite/primitives/linalg.py).

* ``out=`` reuse: an elementwise op writes into the buffer of an operand that dies there,
  only when nobody else can see that buffer (never an input, an output, a constant or a
  value with a live view). Each unsafe case below would give a wrong answer if reused.
* ``donate_argnums``: donated buffers are overwritten, donated Arrays are invalidated.
* einsum is lowered to matmul (else ``optimize=True``); matmul gets transposed views as is;
  a batched product with a shared operand is one 2-D GEMM.

Fusion is turned off where a test is about ``out=`` on plain ops: fused clusters manage
their own chunk buffers.
"""

import re

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite.jit import codegen, fusion
from functorch_lite.primitives import linalg as lp

BIG = (64, codegen.REUSE_MIN_SIZE // 32)      # 2x the reuse threshold
SMALL = (2, 5)
assert BIG[0] * BIG[1] >= codegen.REUSE_MIN_SIZE > SMALL[0] * SMALL[1]


@pytest.fixture
def no_fusion(monkeypatch):
    monkeypatch.setattr(fusion, "ENABLED", False)


def _rand(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _out_targets(source):
    """The names written with ``out=`` in generated source."""
    return re.findall(r"out=(\w+)\)", source)


def _params_of(source):
    return re.match(r"def \w+\((.*)\):", source).group(1).split(", ")


def _check_against_eager(fun, *args, **kwargs):
    """Jit ``fun``, compare with eager (twice: the compiled code runs again on the same
    inputs, which must be untouched) and return the generated source."""
    copies = [np.array(a) for a in args]
    want = fun(*args)
    jitted = fl.jit(fun, **kwargs)
    for _ in range(2):
        got = jitted(*args)
        for g, w in zip(fl.tree.leaves(got), fl.tree.leaves(want), strict=True):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6, atol=1e-6)
    for a, c in zip(args, copies, strict=True):
        np.testing.assert_array_equal(np.asarray(a), c)  # the inputs are untouched
    return jitted.lower(*args).source


# --------------------------------------------------------------------------------------
# out= reuse
# --------------------------------------------------------------------------------------
def chain(x, y):
    a = fnp.sin(x) * 2.0
    b = fnp.exp(a) + y
    return fnp.tanh(b) - 1.0


def test_a_long_chain_on_big_arrays_reuses_dying_buffers(no_fusion):
    x, y = fnp.asarray(_rand(BIG)), fnp.asarray(_rand(BIG, 1))
    source = _check_against_eager(chain, x, y)
    # sin(x) makes a new buffer; the five ops after it each write into the value dying
    # there, so the whole chain allocates once.
    assert len(_out_targets(source)) == 5, source
    params = _params_of(source)
    assert not set(_out_targets(source)) & set(params), "an input was overwritten"


def test_small_arrays_are_not_reused(no_fusion):
    x, y = fnp.asarray(_rand(SMALL)), fnp.asarray(_rand(SMALL, 1))
    source = _check_against_eager(chain, x, y)
    assert "out=" not in source


def test_inputs_are_never_overwritten(no_fusion):
    # x dies at the first op, y at the last: both are the caller's.
    x, y = fnp.asarray(_rand(BIG)), fnp.asarray(_rand(BIG, 1))
    source = _check_against_eager(lambda x, y: fnp.sin(x) * y, x, y)
    assert _out_targets(source) == ["v2"], source  # sin's result, not x or y
    assert _params_of(source) == ["v0", "v1"]


def test_a_returned_value_is_never_overwritten(no_fusion):
    def f(x):
        y = fnp.sin(x) * 3.0
        z = y + 1.0            # y's last use inside, but y is also returned
        return y, fnp.exp(z)

    source = _check_against_eager(f, fnp.asarray(_rand(BIG)))
    outputs = re.search(r"return \((.*)\)", source).group(1).replace(" ", "").split(",")
    y_name = outputs[0]
    # "* 3.0" takes sin's buffer and exp takes z's; "+ 1.0" must not take y's.
    assert y_name not in _out_targets(source)
    assert len(_out_targets(source)) == 2, source


@pytest.mark.parametrize("view", [
    lambda a: fnp.reshape(a, (BIG[1], BIG[0])),
    lambda a: a.T,
    lambda a: a[: BIG[0] // 2],
    lambda a: fnp.expand_dims(a, 0),
], ids=["reshape", "transpose", "slice", "expand_dims"])
def test_a_buffer_with_a_live_view_is_not_overwritten(no_fusion, view):
    def f(x):
        a = fnp.sin(x) + 1.0
        v = view(a)            # a view of a's buffer, used after a dies
        b = fnp.exp(a)         # a's last use: writing into a would change v
        return fnp.sum(b) + fnp.sum(v * 2.0)

    _check_against_eager(f, fnp.asarray(_rand(BIG)))


def test_a_broadcast_view_is_not_written(no_fusion):
    def f(row):
        r = fnp.sin(row) + 1.0
        wide = fnp.broadcast_to(r, BIG)   # a read-only view with zero strides
        return fnp.exp(wide) * 2.0

    source = _check_against_eager(f, fnp.asarray(_rand(BIG[1:])))
    assert len(_out_targets(source)) == 1  # only "* 2.0", into exp's new buffer


def test_a_control_flow_result_may_alias_its_operand(no_fusion):
    def f(x, p):
        a = fnp.sin(x) + 1.0
        same = fl.cond(p, lambda a: a, lambda a: a * 2.0, a)  # may return a itself
        b = fnp.exp(a)
        return b, same

    x = fnp.asarray(_rand(BIG))
    for p in (True, False):
        _check_against_eager(f, x, fnp.asarray(p))


def test_constants_are_never_overwritten(no_fusion):
    c = fnp.asarray(_rand(BIG, 2))
    c_copy = np.array(c)

    def f(x):
        return fnp.exp(c + 1.0) * fnp.sin(x) - c

    source = _check_against_eager(f, fnp.asarray(_rand(BIG)))
    np.testing.assert_array_equal(np.asarray(c), c_copy)
    assert not [t for t in _out_targets(source) if t.startswith("_c")]


def test_a_value_passed_to_an_effect_is_not_reused(no_fusion, capsys):
    def f(x):
        a = fnp.sin(x) + 1.0
        fl.debug.print("{a}", a=a)  # a callback could keep what it is given
        fl.debug.print("no operands")
        return fnp.exp(a)

    source = _check_against_eager(f, fnp.asarray(_rand(BIG)))
    assert re.search(r"xp\.add\((v\d+), 1\.0, out=\1\)", source), source  # sin's buffer
    assert "out=" not in next(line for line in source.splitlines() if "xp.exp(" in line)


def test_fused_cluster_outputs_are_reused():
    # Big enough for fusion (two chunks at least): gelu is one fused loop. Its output h
    # dies at the last add, which may write into it.
    shape = (4 * fusion.CHUNK // 256, 256)

    def f(x):
        h = 0.5 * x * (1 + fnp.tanh(0.79788 * (x + 0.044715 * x * x * x)))
        return h + h @ fnp.ones((256, 256))

    source = _check_against_eager(f, fnp.asarray(_rand(shape)))
    fused_outputs = re.findall(r"(v\d+) = xp\.empty\(", source)
    assert fused_outputs, source
    assert f"xp.add({fused_outputs[0]}, " in source
    assert _out_targets(source)[-1] == fused_outputs[0], source


def test_the_mlp_step_updates_weights_in_place_of_its_gradients():
    def loss(w, x):
        return fnp.sum(fnp.tanh(x @ w) ** 2)

    def step(w, x):
        return w - 0.1 * fl.grad(loss)(w, x)

    w, x = fnp.asarray(_rand((128, 64))), fnp.asarray(_rand((32, 128), 1))
    source = _check_against_eager(step, w, x)
    last = source.strip().splitlines()[-3]  # the update, then its del, then return
    assert "xp.subtract(v0," in last and "out=" in last, source


# --------------------------------------------------------------------------------------
# donate_argnums
# --------------------------------------------------------------------------------------
def sgd(params, grads, lr=0.1):
    return {k: params[k] - lr * grads[k] for k in params}


def _params(seed=0):
    return {"w": fnp.asarray(_rand(BIG, seed)), "b": fnp.asarray(_rand(BIG[1:], seed + 1))}


def _address(x):
    return x._buf.__array_interface__["data"][0]


def test_donated_buffers_are_reused_and_the_arrays_invalidated():
    step = fl.jit(sgd, donate_argnums=0)
    params, grads = _params(), _params(5)
    want = sgd(params, grads)
    w_address = _address(params["w"])
    grads_copy = {k: np.array(v) for k, v in grads.items()}
    new = step(params, grads)
    for k in want:
        np.testing.assert_allclose(np.asarray(new[k]), np.asarray(want[k]), rtol=1e-6)
    assert _address(new["w"]) == w_address  # written over the old weights
    assert params["w"].is_deleted() and params["b"].is_deleted()
    for k, v in grads.items():  # not donated: untouched and usable
        assert not v.is_deleted()
        np.testing.assert_array_equal(np.asarray(v), grads_copy[k])


def test_repeated_donating_calls_keep_reusing_the_buffers():
    """Later calls take the fast call path: donation, reuse and invalidation hold there
    too, and an Array still referenced elsewhere (a view kept by the caller) is not
    overwritten."""
    step = fl.jit(sgd, donate_argnums=0)
    params, grads = _params(), _params(5)
    for _ in range(3):
        old, address = params, _address(params["w"])
        want = sgd(old, grads)
        params = step(params, grads)
        assert _address(params["w"]) == address
        assert old["w"].is_deleted()
        np.testing.assert_allclose(np.asarray(params["w"]), np.asarray(want["w"]), rtol=1e-6)
    kept = params["w"]._buf  # the caller holds the buffer: it must not be written over
    before = kept.copy()
    params = step(params, grads)
    np.testing.assert_array_equal(kept, before)
    assert _address(params["w"]) != kept.__array_interface__["data"][0]


@pytest.mark.parametrize("use", [
    lambda x: x + 1, lambda x: fnp.sin(x), lambda x: np.asarray(x), lambda x: x.shape,
    lambda x: x[0], lambda x: float(x.sum()), lambda x: fl.jit(fnp.sin)(x),
    lambda x: fl.grad(lambda v: fnp.sum(v))(x)],
    ids=["add", "fnp", "numpy", "shape", "index", "sum", "jit", "grad"])
def test_using_a_donated_array_raises_naming_function_and_argument(use):
    step = fl.jit(sgd, donate_argnums=(0,))
    params = _params()
    step(params, _params(5))
    with pytest.raises(RuntimeError, match=r"jit\(sgd\): the argument params\['w'\] was "
                       r"donated.*Use the values jit\(sgd\) returned"):
        use(params["w"])
    assert repr(params["w"]) == "<deleted Array>"


def test_passing_a_donated_array_again_raises():
    step = fl.jit(sgd, donate_argnums=0)
    params, grads = _params(), _params(5)
    step(params, grads)
    with pytest.raises(RuntimeError, match="donated"):
        step(params, grads)


def test_repeated_donating_calls_match_a_step_without_donation():
    donating, plain = fl.jit(sgd, donate_argnums=0), fl.jit(sgd)
    a, b, grads = _params(), _params(), _params(5)
    for _ in range(4):
        a, b = donating(a, grads), plain(b, grads)
        for k in a:
            np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))
    assert donating.trace_count == 1


def test_the_same_array_passed_twice_is_not_overwritten():
    def f(a, b):
        c = a * 2.0     # a dies here: writing into it would change b
        return c + b

    x = fnp.asarray(_rand(BIG))
    want = 3 * np.array(x)
    got = fl.jit(f, donate_argnums=0)(x, x)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    assert x.is_deleted()  # donated all the same: the caller gave it away


def test_buffers_the_caller_still_sees_are_not_overwritten():
    raw = _rand(BIG)
    kept_raw = raw.copy()
    from_numpy = fnp.asarray(raw)        # shares raw's memory
    viewed = fnp.asarray(_rand(BIG, 1))
    view = viewed.T                      # an eager view of viewed's buffer
    view_copy = np.array(view)
    f = fl.jit(lambda a, b: (a * 2.0, b * 2.0), donate_argnums=(0, 1))
    out = f(from_numpy, viewed)
    np.testing.assert_array_equal(raw, kept_raw)
    np.testing.assert_array_equal(np.asarray(view), view_copy)
    np.testing.assert_allclose(np.asarray(out[0]), 2 * kept_raw)


def test_non_array_leaves_are_read_not_donated():
    raw = _rand(BIG)
    f = fl.jit(lambda d: {k: v * 2.0 for k, v in d.items()}, donate_argnums=0)
    out = f({"raw": raw, "scalar": 3.0, "array": fnp.asarray(_rand(BIG, 1))})
    np.testing.assert_allclose(np.asarray(out["raw"]), raw * 2)
    assert float(out["scalar"]) == 6.0


def test_donation_with_static_arguments_and_keywords():
    def f(scale, params, grads):
        return sgd(params, grads, lr=scale)

    step = fl.jit(f, static_argnums=0, donate_argnums=1)
    params, grads = _params(), _params(5)
    want = f(0.5, params, grads)
    w_address = _address(params["w"])
    got = step(0.5, params, grads)
    assert _address(got["w"]) == w_address and params["b"].is_deleted()
    np.testing.assert_allclose(np.asarray(got["w"]), np.asarray(want["w"]), rtol=1e-6)
    again = step(0.5, params=got, grads=grads)  # a donated argument passed by name
    assert got["w"].is_deleted() and not grads["w"].is_deleted()
    source = step.lower(0.5, again, grads).source
    assert set(_out_targets(source)) & set(_params_of(source)[:2]), source  # params['w']


def test_lists_of_params_and_optimizer_state():
    def step(params, velocity, grads):
        velocity = [0.9 * v + g for v, g in zip(velocity, grads, strict=True)]
        return [p - 0.1 * v for p, v in zip(params, velocity, strict=True)], velocity

    donating = fl.jit(step, donate_argnums=(0, 1))
    params = [fnp.asarray(_rand(BIG, i)) for i in range(2)]
    velocity = [fnp.zeros(BIG) for _ in range(2)]
    grads = [fnp.asarray(_rand(BIG, 7 + i)) for i in range(2)]
    want = fl.jit(step)(params, velocity, grads)
    got = donating(params, velocity, grads)
    for g, w in zip(fl.tree.leaves(got), fl.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)
    assert all(p.is_deleted() for p in params + velocity)
    source = donating.lower(*got, grads).source
    assert {"v0", "v1", "v2", "v3"} <= set(_out_targets(source)), source


def test_donation_is_ignored_under_a_transform_and_inside_jit():
    inner = fl.jit(lambda p: fnp.sum(fnp.sin(p) * 2.0), donate_argnums=0)
    p = fnp.asarray(_rand(BIG))
    fl.grad(inner)(p)
    fl.jit(lambda p: inner(p) + 1.0)(p)
    fl.vmap(inner)(p)
    assert not p.is_deleted()
    want = float(fnp.sum(fnp.sin(p) * 2.0))
    np.testing.assert_allclose(float(inner(p)), want, rtol=1e-5)  # top level: donated
    assert p.is_deleted()


def test_a_donated_argument_that_is_returned():
    f = fl.jit(lambda x, y: (x, y * 2.0), donate_argnums=0)
    x = fnp.asarray(_rand(BIG))
    x_copy = np.array(x)
    same, _ = f(x, fnp.ones(BIG))
    np.testing.assert_array_equal(np.asarray(same), x_copy)
    assert x.is_deleted() and not same.is_deleted()


def test_a_donating_method():
    class Model:
        @fl.jit
        def plain(self, x):
            return x * 2.0

        step = fl.jit(lambda self, x: x * 3.0, donate_argnums=1)

    x = fnp.asarray(_rand(BIG))
    want = 3 * np.array(x)
    np.testing.assert_allclose(np.asarray(Model().step(x)), want, rtol=1e-6)
    assert x.is_deleted()


# --------------------------------------------------------------------------------------
# einsum and matmul lowering
# --------------------------------------------------------------------------------------
EINSUMS = [
    ("ij,jk->ik", (4, 5), (5, 6)), ("ij,kj->ik", (4, 5), (6, 5)),
    ("ij,jk->ki", (4, 5), (5, 6)), ("bij,bjk->bik", (3, 4, 5), (3, 5, 6)),
    ("bij,jk->bik", (3, 4, 5), (5, 6)), ("i,i->", (5,), (5,)), ("i,j->ij", (3,), (4,)),
    ("bi,bj->bij", (2, 3), (2, 4)), ("i,i->i", (5,), (5,)), ("abc,cd->dba", (2, 3, 4), (4, 5)),
    ("bhqd,bhkd->bhqk", (2, 3, 4, 5), (2, 3, 6, 5)), ("ij,ij->", (3, 4), (3, 4)),
    ("ii,ij->j", (3, 3), (3, 4)), ("ij,j->i", (3, 4), (1,)), ("ij,jk->i", (3, 4), (4, 5)),
    ("ij->ji", (3, 4)), ("ij->i", (3, 4)), ("ij->", (3, 4)), ("ii->i", (3, 3)),
    ("ij,jk,kl->il", (2, 3), (3, 4), (4, 5)), ("ij,jk->ik", (0, 3), (3, 4)),
    ("...ij,...jk->...ik", (2, 3, 4), (2, 4, 5)),
]


@pytest.mark.parametrize("case", EINSUMS, ids=[c[0] for c in EINSUMS])
def test_einsum_lowering_matches_numpy(case):
    subscripts, *shapes = case
    ops = [_rand(s, i) for i, s in enumerate(shapes)]
    want = np.einsum(subscripts, *ops)
    eager = fnp.einsum(subscripts, *map(fnp.asarray, ops))
    jitted = fl.jit(lambda *xs: fnp.einsum(subscripts, *xs))(*map(fnp.asarray, ops))
    for got in (eager, jitted):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(eager), np.asarray(jitted))


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.bool_, np.float64, np.complex64])
@pytest.mark.parametrize("subscripts", ["ij,jk->ik", "bij,bjk->bik", "ij->i", "ij->"])
def test_einsum_lowering_keeps_numpy_dtypes(dtype, subscripts):
    shapes = [(2, 3, 4), (2, 4, 3)] if subscripts.startswith("b") else [(3, 4), (4, 2)]
    ops = [(_rand(s, i) * 4).astype(dtype) for i, s in enumerate(shapes)]
    ops = ops[: subscripts.count(",") + 1]
    want = np.einsum(subscripts, *ops)
    got = fnp.einsum(subscripts, *map(fnp.asarray, ops))
    assert got.dtype == want.dtype
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)


def test_einsum_never_takes_numpys_default_path():
    class Recorder:
        """numpy, recording how einsum is called."""

        calls = []

        def __getattr__(self, name):
            return getattr(np, name)

        def einsum(self, *args, **kwargs):
            self.calls.append(kwargs)
            return np.einsum(*args, **kwargs)

    xp = Recorder()
    for subscripts, *shapes in EINSUMS:
        if "." in subscripts:
            continue
        lp.einsum_p.impl(xp, *[np.ones(s) for s in shapes], subscripts=subscripts)
    assert xp.calls and all(kw == {"optimize": True} for kw in xp.calls)


def _source_of(fun, *shapes):
    return fl.jit(fun).lower(*[fnp.ones(s) for s in shapes]).source


@pytest.mark.parametrize("subscripts, shapes, expected", [
    ("ij,jk->ik", [(4, 5), (5, 6)], "xp.matmul(v0, v1)"),
    ("ij,kj->ik", [(4, 5), (6, 5)], "xp.matmul(v0, v1.transpose((1, 0)))"),
    ("bij,bjk->bik", [(3, 4, 5), (3, 5, 6)], "xp.matmul(v0, v1)"),
    # a shared operand: the batch joins the rows of one 2-D GEMM
    ("bij,jk->bik", [(3, 4, 5), (5, 6)], "xp.matmul(v0.reshape((12, 5)), v1)"),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], "optimize=True"),
])
def test_jitted_einsum_is_written_as_matmul(subscripts, shapes, expected):
    source = _source_of(lambda *xs: fnp.einsum(subscripts, *xs), *shapes)
    assert expected in source
    assert ("einsum" in source) == (expected == "optimize=True")


def test_matmul_gets_the_transposed_view_not_a_copy():
    source = _source_of(lambda x, g: x.T @ g, (8, 3), (8, 5))
    transposed = re.search(r"(v\d+) = v0\.transpose\(\(1, 0\)\)", source).group(1)
    assert f"xp.matmul({transposed}, v1)" in source
    assert "copy" not in source and "contiguous" not in source
    a, b = _rand((3, 8)), _rand((5, 8), 1)
    got = fl.jit(lambda a, b: a @ b.T)(fnp.asarray(a), fnp.asarray(b))
    np.testing.assert_allclose(np.asarray(got), a @ b.T, rtol=1e-5)


def test_transpose_impl_returns_a_view():
    x = np.ones((3, 4))
    assert np.shares_memory(fl.core.registry["transpose"].impl(np, x, perm=(1, 0)), x)


@pytest.mark.parametrize("in_axes", [0, 1])
def test_vmapped_matmul_with_a_shared_matrix_is_one_2d_gemm(in_axes):
    w = fnp.asarray(_rand((5, 6)))
    xs = fnp.asarray(_rand((7, 4, 5) if in_axes == 0 else (4, 7, 5)))
    f = fl.jit(fl.vmap(lambda x: x @ w, in_axes=in_axes))
    products = [e for e in f.lower(xs).graph.eqns if e.prim.name == "matmul"]
    assert len(products) == 1
    assert [v.aval.ndim for v in products[0].inputs] == [2, 2]
    want = np.einsum("bij,jk->bik", np.moveaxis(np.asarray(xs), in_axes, 0), np.asarray(w))
    np.testing.assert_allclose(np.asarray(f(xs)), want, rtol=1e-5)


def test_vmapped_einsum_with_a_shared_operand_is_one_2d_gemm():
    w = fnp.asarray(_rand((5, 6)))
    f = fl.jit(fl.vmap(lambda x: fnp.einsum("ij,jk->ik", x, w)))
    xs = fnp.asarray(_rand((7, 4, 5)))
    source = f.lower(xs).source
    assert source.count("xp.matmul(") == 1 and ".reshape((28, 5))" in source
    np.testing.assert_allclose(np.asarray(f(xs)), np.asarray(xs) @ np.asarray(w), rtol=1e-5)


def test_reductions_reshape_transpose_are_written_as_direct_calls():
    """Reductions call the ufunc's reduce (what the ndarray method calls, minus NumPy's
    Python wrapper); reshape and transpose are method calls; no bound impls."""
    f = lambda x: (fnp.transpose(fnp.sum(x, axis=1, keepdims=True))
                   + fl.stop_gradient(fnp.max(x, axis=1)) + fnp.min(x, axis=1))
    source = _source_of(f, (4, 3))
    assert "= _sum(v0, axis=(1,))" in source and "= _max(v0, axis=(1,))" in source
    assert "= _min(v0, axis=(1,))" in source
    assert ".reshape((4, 1))" in source and ".transpose((1, 0))" in source
    assert "_stop_gradient" not in source and "_reduce" not in source
    x = fnp.asarray(np.arange(12.0).reshape(4, 3))
    np.testing.assert_array_equal(fl.jit(f)(x), f(x))


def test_jitted_empty_reductions_match_eager():
    x = fnp.zeros((0, 3))
    np.testing.assert_array_equal(fl.jit(lambda v: fnp.sum(v, axis=0))(x), np.zeros(3))
    with pytest.raises(ValueError, match="no identity"):
        fl.jit(lambda v: fnp.max(v, axis=0))(x)
