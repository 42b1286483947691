"""chain, clipping, weight decay, masked/freeze on pytrees; dtypes; error messages; Lion."""

import numpy as np
import pytest

import functorch_lite.numpy as fnp
from functorch_lite import optim, tree

TREES = {
    "dict": ({"a": fnp.array([3.0, 0.0]), "b": {"c": fnp.array([[4.0]])}}, 5.0),
    "list": ([fnp.array([1.0, 2.0]), fnp.array([2.0]), fnp.array(4.0)], 5.0),
    "tuple": ((fnp.array([0.0, 6.0]), (fnp.array([8.0]),)), 10.0),
}


def as_np(t):
    return tree.map(np.asarray, t)


def step(opt, grads, params=None, state=None):
    state = opt.init(params if params is not None else grads) if state is None else state
    return opt.update(grads, state, params)


@pytest.mark.parametrize("kind", sorted(TREES))
def test_clip_by_global_norm_rescales_all_leaves_together(kind):
    grads, norm = TREES[kind]
    clipped, _ = step(optim.clip_by_global_norm(1.0), grads)
    assert tree.structure(clipped) == tree.structure(grads)
    for g, c in zip(tree.leaves(grads), tree.leaves(clipped)):
        np.testing.assert_allclose(np.asarray(c), np.asarray(g) / norm, rtol=1e-6)
    unchanged, _ = step(optim.clip_by_global_norm(norm * 2), grads)
    for g, u in zip(tree.leaves(grads), tree.leaves(unchanged)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(g))


def test_clip_by_global_norm_float16_does_not_overflow():
    grads = {"h": fnp.full((4,), 300.0, dtype=fnp.float16), "f": fnp.array([0.0, 0.0])}
    clipped, _ = step(optim.clip_by_global_norm(1.0), grads)
    assert clipped["h"].dtype == np.float16 and clipped["f"].dtype == np.float32
    np.testing.assert_allclose(np.asarray(clipped["h"], np.float32), 0.5, rtol=1e-3)


@pytest.mark.parametrize("kind", sorted(TREES))
def test_clip_is_elementwise(kind):
    grads, _ = TREES[kind]
    clipped, _ = step(optim.clip(2.5), grads)
    for g, c in zip(tree.leaves(grads), tree.leaves(clipped)):
        np.testing.assert_array_equal(np.asarray(c), np.clip(np.asarray(g), -2.5, 2.5))


def test_chain_applies_in_order_and_keeps_a_state_per_transform():
    opt = optim.chain(optim.clip(1.0), optim.scale(3.0), optim.trace(0.5))
    params = [fnp.zeros(2)]
    state = opt.init(params)
    assert len(state) == 3 and isinstance(state[2], optim.TraceState)
    grads = [fnp.array([5.0, -0.5])]
    updates, state = opt.update(grads, state, params)
    np.testing.assert_allclose(np.asarray(updates[0]), [3.0, -1.5])   # clip, then scale
    updates, state = opt.update(grads, state, params)
    np.testing.assert_allclose(np.asarray(updates[0]), [4.5, -2.25])  # + 0.5 * trace


@pytest.mark.parametrize("kind", sorted(TREES))
def test_add_decayed_weights(kind):
    params, _ = TREES[kind]
    grads = tree.map(fnp.ones_like, params)
    updates, _ = step(optim.add_decayed_weights(0.1), grads, params)
    for p, u in zip(tree.leaves(params), tree.leaves(updates)):
        np.testing.assert_allclose(np.asarray(u), 1 + 0.1 * np.asarray(p), rtol=1e-6)


def test_add_decayed_weights_mask_true_means_decayed():
    params = {"w": fnp.array([2.0]), "b": fnp.array([2.0])}
    grads = tree.map(fnp.zeros_like, params)
    updates, _ = step(optim.add_decayed_weights(0.5, mask={"w": True, "b": False}), grads,
                      params)
    assert as_np(updates) == {"w": np.array([1.0]), "b": np.array([0.0])}


def test_masked_transforms_selected_leaves_and_passes_others_through():
    params = {"enc": {"w": fnp.ones(2), "b": fnp.ones(1)}, "head": [fnp.ones(3)]}
    grads = tree.map(lambda p: 2 * p, params)
    for mask in ({"enc": {"w": True, "b": False}, "head": [True]},      # full mask
                 lambda p: tree.map(lambda x: x.size > 1, p)):          # callable mask
        opt = optim.masked(optim.trace(0.9), mask)
        state = opt.init(params)
        # The inner state holds arrays for the selected leaves only.
        assert len(tree.leaves(state)) == 2
        updates, state = opt.update(grads, state, params)
        updates, state = opt.update(grads, state, params)
        np.testing.assert_allclose(np.asarray(updates["enc"]["w"]), [3.8, 3.8])
        np.testing.assert_allclose(np.asarray(updates["head"][0]), [3.8] * 3)
        np.testing.assert_array_equal(np.asarray(updates["enc"]["b"]), [2.0])


def test_masked_accepts_a_prefix_mask():
    params = {"enc": {"w": fnp.ones(2), "b": fnp.ones(1)}, "head": (fnp.ones(3),)}
    opt = optim.masked(optim.scale(0.0), {"enc": True, "head": False})
    updates, _ = step(opt, params, params)
    assert [float(fnp.sum(u)) for u in tree.leaves(updates)] == [0.0, 0.0, 3.0]


@pytest.mark.parametrize("make", [lambda: optim.adamw(0.1, weight_decay=0.5),
                                  lambda: optim.sgd(0.1, momentum=0.9),
                                  lambda: optim.lion(0.1)])
def test_freeze_true_leaves_never_move(make):
    params = {"frozen": [fnp.ones(2), (fnp.ones(1),)], "trained": fnp.ones(3)}
    mask = {"frozen": True, "trained": False}
    opt = optim.chain(make(), optim.freeze(mask))
    state = opt.init(params)
    start = as_np(params)
    for _ in range(5):
        grads = tree.map(lambda p: p + 1.0, params)
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
    for before, after in zip(tree.leaves(start["frozen"]), tree.leaves(params["frozen"])):
        np.testing.assert_array_equal(np.asarray(after), before)
    assert np.all(np.asarray(params["trained"]) < 1.0)


def test_lion_two_steps_closed_form():
    b1, b2, lr, wd = 0.9, 0.99, 0.1, 0.01
    p0, g0, g1 = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.3, -2.0]), np.array([-1.0, 0.2, 1.0])
    m, p = np.zeros(3), p0.copy()
    for g in (g0, g1):
        p = p - lr * (np.sign(b1 * m + (1 - b1) * g) + wd * p)
        m = b2 * m + (1 - b2) * g
    opt = optim.lion(lr, b1=b1, b2=b2, weight_decay=wd)
    params = fnp.asarray(p0.astype(np.float32))
    state = opt.init(params)
    for g in (g0, g1):
        updates, state = opt.update(fnp.asarray(g.astype(np.float32)), state, params)
        params = optim.apply_updates(params, updates)
    np.testing.assert_allclose(np.asarray(params), p, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(state[0].mu), m, rtol=1e-6)


OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.1, momentum=0.9, nesterov=True),
    "adam": lambda: optim.adam(optim.warmup_cosine_decay_schedule(0.0, 1e-2, 2, 10)),
    "adamw": lambda: optim.adamw(1e-2),
    "rmsprop": lambda: optim.rmsprop(1e-2, centered=True, momentum=0.5),
    "adagrad": lambda: optim.adagrad(optim.exponential_decay(0.1, 2, 0.5)),
    "lion": lambda: optim.lion(1e-3),
    "clipped": lambda: optim.chain(optim.clip_by_global_norm(1.0), optim.adam(1e-3)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_updates_and_states_keep_each_leaf_dtype(name):
    params = {"half": fnp.ones((2, 2), fnp.float16), "single": fnp.ones(3, fnp.float32)}
    opt = OPTIMIZERS[name]()
    state = opt.init(params)
    dtypes = [x.dtype for x in tree.leaves(state)]
    for _ in range(3):
        grads = {"half": fnp.full((2, 2), 0.5, fnp.float16), "single": fnp.full(3, -0.5)}
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
    assert updates["half"].dtype == np.float16 and updates["single"].dtype == np.float32
    assert params["half"].dtype == np.float16 and params["single"].dtype == np.float32
    assert [x.dtype for x in tree.leaves(state)] == dtypes
    assert np.all(np.asarray(params["single"]) > 1.0)  # the step went downhill


# --------------------------------------------------------------------------------------
# Errors name the function, the structures or dtypes involved, and the fix
# --------------------------------------------------------------------------------------
def test_grads_with_another_structure_name_both():
    params = {"w": fnp.ones(2), "b": fnp.ones(1)}
    opt = optim.adam(1e-3)
    state = opt.init(params)
    with pytest.raises(ValueError, match=r"adam\.update: the optimizer state \(mu\) has "
                                         r"structure PyTreeDef\(\{'b': \*, 'w': \*\}\), but "
                                         r"the grads has structure PyTreeDef\(\{'w': \*\}\)"):
        opt.update({"w": fnp.ones(2)}, state, params)


def test_apply_updates_structure_mismatch():
    with pytest.raises(ValueError, match=r"apply_updates: the updates tree has structure "
                                         r"PyTreeDef\(\[\*\]\).*PyTreeDef\(\(\*,\)\)"):
        optim.apply_updates((fnp.ones(1),), [fnp.ones(1)])


def test_non_float_leaf_is_named():
    params = {"w": fnp.ones(2), "steps": fnp.zeros(1, fnp.int32)}
    with pytest.raises(TypeError, match=r"sgd\.init: params leaf \['steps'\] has dtype "
                                        r"int32.*floating-point"):
        optim.sgd(0.1, momentum=0.9).init(params)
    opt = optim.rmsprop(0.1)
    state = opt.init({"w": fnp.ones(2)})
    with pytest.raises(TypeError, match=r"rmsprop\.update: grads leaf \['w'\] has dtype int64"):
        opt.update({"w": fnp.array([1, 2])}, state)


@pytest.mark.parametrize("make, message", [
    (lambda: optim.sgd(-0.1), r"sgd: learning_rate must be a non-negative number"),
    (lambda: optim.adam(1e-3, b1=1.0), r"adam: b1 must be in \[0.0, 1.0\), got 1.0"),
    (lambda: optim.adamw(1e-3, b2=-0.1), r"adamw: b2 must be in \[0.0, 1.0\)"),
    (lambda: optim.adamw(1e-3, weight_decay=-1), r"adamw: weight_decay must be >= 0"),
    (lambda: optim.rmsprop(1e-3, decay=1.5), r"rmsprop: decay must be in \[0.0, 1.0\)"),
    (lambda: optim.sgd(0.1, nesterov=True), r"sgd: nesterov=True needs a momentum > 0"),
    (lambda: optim.lion(0.1, b2=1), r"lion: b2 must be in"),
    (lambda: optim.adagrad("fast"), r"adagrad: learning_rate must be"),
    (lambda: optim.clip_by_global_norm(0.0), r"clip_by_global_norm: max_norm must be a "
                                             r"positive number"),
    (lambda: optim.clip(-1.0), r"clip: max_delta must be >= 0"),
    (lambda: optim.cosine_decay_schedule(1.0, 0), r"cosine_decay_schedule: decay_steps must"),
    (lambda: optim.warmup_cosine_decay_schedule(0.0, 1.0, 10, 5), r"decay_steps \(the total"),
    (lambda: optim.lbfgs(c1=0.95), r"lbfgs: the Wolfe constants need 0 < c1 < c2 < 1"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_chain_rejects_an_uncalled_factory():
    with pytest.raises(TypeError, match=r"chain: argument 1 is a function.*optim\.adam\(1e-3\)"):
        optim.chain(optim.clip(1.0), optim.adam)


def test_mask_errors():
    params = {"w": fnp.ones(2), "b": fnp.ones(1)}
    with pytest.raises(TypeError, match=r"freeze\.init: mask leaf \['w'\] is Array.*Python "
                                        r"bools"):
        optim.freeze({"w": fnp.array(True), "b": False}).init(params)
    with pytest.raises(ValueError, match=r"adamw\.init: the mask has structure "
                                         r"PyTreeDef\(\{'x': \*\}\)"):
        optim.adamw(1e-3, mask={"x": True}).init(params)


def test_weight_decay_needs_params():
    opt = optim.adamw(1e-3)
    params = {"w": fnp.ones(2)}
    with pytest.raises(ValueError, match=r"adamw\.update: weight decay needs the params"):
        opt.update(params, opt.init(params))


def test_numpy_scalar_hyperparameters_do_not_promote_float32():
    params = {"w": fnp.ones(2)}
    for opt in (optim.adam(np.float64(1e-3), b1=np.float64(0.8)),
                optim.sgd(np.float32(0.1), momentum=np.float64(0.9)),
                optim.adamw(1e-3, weight_decay=np.float64(0.1)),
                optim.sgd(lambda step: np.float64(0.1)),
                optim.sgd(optim.cosine_decay_schedule(np.float64(0.1), 10))):
        state = opt.init(params)
        updates, state = opt.update({"w": fnp.ones(2)}, state, params)
        assert updates["w"].dtype == np.float32
        assert all(x.dtype in (np.float32, np.int32) for x in tree.leaves(state))
