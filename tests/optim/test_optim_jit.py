"""Optimizer updates under fl.jit (same numbers as eager, one trace), under fl.vmap, and a
small end-to-end training run."""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import optim, tree

_rng = np.random.default_rng(1)
X = _rng.normal(size=(32, 4)).astype(np.float32)
Y = (X @ _rng.normal(size=(4, 2))).astype(np.float32)


def loss(params):
    hidden = fnp.tanh(X @ params["layers"][0]["w"] + params["layers"][0]["b"])
    return fnp.mean((hidden @ params["layers"][1] - Y) ** 2)


def init_params():
    rng = np.random.default_rng(2)
    return {"layers": [{"w": fnp.asarray(rng.normal(size=(4, 8)).astype(np.float32)),
                        "b": fnp.zeros(8)},
                       fnp.asarray(rng.normal(size=(8, 2)).astype(np.float32))]}


OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.05),
    "sgd_nesterov_schedule": lambda: optim.sgd(optim.exponential_decay(0.05, 2, 0.9),
                                               momentum=0.9, nesterov=True),
    "adam_warmup_cosine": lambda: optim.adam(
        optim.warmup_cosine_decay_schedule(0.0, 1e-2, 2, 10)),
    "adamw_masked": lambda: optim.adamw(1e-2, weight_decay=0.1,
                                        mask=lambda p: tree.map(lambda x: x.ndim > 1, p)),
    "rmsprop": lambda: optim.rmsprop(1e-2, centered=True, momentum=0.5),
    "adagrad": lambda: optim.adagrad(0.1),
    "lion_piecewise": lambda: optim.lion(optim.piecewise_constant_schedule(1e-3, {3: 0.5})),
    "clip_chain_freeze": lambda: optim.chain(
        optim.clip_by_global_norm(0.5), optim.clip(0.1), optim.adam(1e-2),
        optim.freeze({"layers": [True, False]})),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_jit_matches_eager_and_traces_once(name):
    opt = OPTIMIZERS[name]()

    def step(params, state):
        grads = fl.grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    jitted = fl.debug.assert_max_traces(1)(fl.jit(step))
    eager_params = jit_params = init_params()
    eager_state = jit_state = opt.init(eager_params)
    for _ in range(5):
        eager_params, eager_state = step(eager_params, eager_state)
        jit_params, jit_state = jitted(jit_params, jit_state)
    assert jitted.trace_count == 1
    assert tree.structure(jit_state) == tree.structure(eager_state)
    for a, b in zip(tree.leaves((eager_params, eager_state)),
                    tree.leaves((jit_params, jit_state))):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=2e-5, atol=1e-6)
    assert float(loss(jit_params)) < float(loss(init_params()))


def test_init_and_update_under_vmap_match_a_loop():
    # A batch of independent parameter sets (e.g. an ensemble): one vmapped optimizer step.
    opt = optim.adam(0.1)
    batch = fnp.asarray(np.random.default_rng(3).normal(size=(4, 3)).astype(np.float32))

    def one(p):
        state = opt.init(p)
        for _ in range(2):
            updates, state = opt.update(fl.grad(lambda q: fnp.sum(q ** 4))(p), state, p)
            p = optim.apply_updates(p, updates)
        return p, state

    batched, batched_state = fl.vmap(one)(batch)
    assert batched_state[0].count.shape == (4,)
    for i in range(4):
        expected, _ = one(batch[i])
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(expected), rtol=1e-6)


def test_mlp_trains_to_near_zero_loss_with_adam_under_jit():
    """End to end: a 2-layer MLP separates two blobs, trained with optim.adam inside
    fl.jit(fl.value_and_grad)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2.0, 0.5, size=(32, 2)), rng.normal(2.0, 0.5, size=(32, 2))])
    labels = np.concatenate([np.zeros(32), np.ones(32)])
    x, labels = x.astype(np.float32), labels.astype(np.float32)

    def model_loss(params, x, labels):
        hidden = fnp.maximum(x @ params["w1"] + params["b1"], 0.0)
        logits = (hidden @ params["w2"] + params["b2"])[:, 0]
        # Binary cross-entropy with logits, written stably.
        return fnp.mean(fnp.maximum(logits, 0) - logits * labels
                        + fnp.log1p(fnp.exp(-fnp.abs(logits))))

    params = {"w1": fnp.asarray(rng.normal(0, 0.5, size=(2, 16)).astype(np.float32)),
              "b1": fnp.zeros(16), "w2": fnp.asarray(rng.normal(0, 0.5, size=(16, 1))
                                                     .astype(np.float32)),
              "b2": fnp.zeros(1)}
    opt = optim.adam(0.05)
    loss_and_grad = fl.jit(fl.value_and_grad(model_loss))

    @fl.jit
    def train_step(params, state, x, labels):
        value, grads = loss_and_grad(params, x, labels)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, value

    state = opt.init(params)
    first = None
    for _ in range(150):
        params, state, value = train_step(params, state, x, labels)
        first = float(value) if first is None else first
    final = float(model_loss(params, x, labels))
    assert first > 0.3 and final < 1e-3
    assert train_step.trace_count == 1 and int(state[0].count) == 150
    assert all(leaf.dtype == np.float32 for leaf in tree.leaves(params))
