"""fl.train.make_step / make_eval_step / supervised: same numbers as a hand-written step,
one trace, aux metrics, donation, model state threaded through Variables, errors."""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import optim, train

_rng = np.random.default_rng(0)
X = _rng.normal(size=(16, 3)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5], np.float32) + 0.25).astype(np.float32)


def init_params():
    return {"w": fnp.asarray(_rng.normal(size=(3,)).astype(np.float32)), "b": fnp.zeros(())}


def loss_fn(params, batch, key):
    x, y = batch
    noise = 0.01 * fl.random.normal(key, y.shape)   # uses the key: keys must be threaded
    return fnp.mean((x @ params["w"] + params["b"] - y + noise) ** 2)


def loss_with_aux(params, batch, key):
    x, y = batch
    err = x @ params["w"] + params["b"] - y
    return fnp.mean(err ** 2), {"max_err": fnp.max(fnp.abs(err)), "bias": params["b"]}


def test_step_matches_a_hand_written_step():
    opt = optim.adam(0.05)
    params = init_params()
    opt_state = opt.init(params)
    step = train.make_step(loss_fn, opt)

    @fl.jit
    def reference(params, opt_state, batch, key):
        loss, grads = fl.value_and_grad(loss_fn)(params, batch, key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss, grads

    ref_params, ref_state = params, opt_state
    for i in range(5):
        key = fl.random.key(i)
        params, opt_state, metrics = step(params, opt_state, (X, Y), key)
        ref_params, ref_state, ref_loss, grads = reference(ref_params, ref_state, (X, Y), key)
        np.testing.assert_allclose(float(metrics["loss"]), float(ref_loss), rtol=1e-6)
        norm = np.sqrt(sum(float(np.sum(np.asarray(g) ** 2)) for g in fl.tree.leaves(grads)))
        np.testing.assert_allclose(float(metrics["grad_norm"]), norm, rtol=1e-5)
    for got, want in zip(fl.tree.leaves((params, opt_state)),
                         fl.tree.leaves((ref_params, ref_state))):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-7)
    assert step.trace_count == 1


def test_aux_metrics_are_reported_beside_loss_and_grad_norm():
    step = train.make_step(loss_with_aux, optim.sgd(0.1))
    params = init_params()
    _, _, metrics = step(params, optim.sgd(0.1).init(params), (X, Y), fl.random.key(0))
    assert sorted(metrics) == ["bias", "grad_norm", "loss", "max_err"]
    err = X @ np.asarray(params["w"]) - Y
    np.testing.assert_allclose(float(metrics["max_err"]), np.abs(err).max(), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["loss"]), np.mean(err ** 2), rtol=1e-5)


def test_donated_step_invalidates_inputs_and_gives_the_same_result():
    opt = optim.sgd(0.1, momentum=0.9)
    params = init_params()
    kept = fl.tree.map(lambda p: fnp.asarray(np.array(p)), params)   # independent copy
    plain, donating = train.make_step(loss_fn, opt), train.make_step(loss_fn, opt, donate=True)
    state, kept_state = opt.init(params), opt.init(kept)
    for i in range(3):
        old = params
        params, state, _ = donating(params, state, (X, Y), fl.random.key(i))
        kept, kept_state, _ = plain(kept, kept_state, (X, Y), fl.random.key(i))
    assert old["w"].is_deleted()
    with pytest.raises(RuntimeError):
        old["w"] + 1.0
    np.testing.assert_allclose(np.asarray(params["w"]), np.asarray(kept["w"]), rtol=1e-6)


def test_unjitted_step_for_debugging_gives_the_same_numbers():
    opt = optim.sgd(0.1)
    params = init_params()
    eager = train.make_step(loss_with_aux, opt, jit_compile=False)
    jitted = train.make_step(loss_with_aux, opt)
    a = eager(params, opt.init(params), (X, Y), fl.random.key(0))
    b = jitted(params, opt.init(params), (X, Y), fl.random.key(0))
    for got, want in zip(fl.tree.leaves(a), fl.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)


class Counter:
    """A model with state: counts training calls, keeps a running mean of its inputs."""

    def init(self, key):
        return {"w": fnp.zeros(3)}, {"calls": fnp.zeros(()), "mean": fnp.zeros(3)}

    def apply(self, params, state, x, *, key=None, train=False):
        if train:
            state = {"calls": state["calls"] + 1.0,
                     "mean": 0.5 * state["mean"] + 0.5 * fnp.mean(x, axis=0)}
        return x @ params["w"], state


def mse(out, y):
    return fnp.mean((out - y) ** 2)


def test_model_state_is_threaded_through_variables():
    model = Counter()
    params, state = model.init(fl.random.key(0))
    loss = train.supervised(model, mse, metrics={"mae": lambda out, y: fnp.mean(fnp.abs(out - y))})
    opt = optim.adamw(0.05)   # weight decay would corrupt the state if it were optimized
    variables = train.Variables(params, state)
    opt_state = opt.init(params)
    step = train.make_step(loss, opt)
    for i in range(4):
        variables, opt_state, metrics = step(variables, opt_state, (X, Y), fl.random.key(i))
    assert isinstance(variables, train.Variables)
    assert float(variables.state["calls"]) == 4.0
    np.testing.assert_allclose(np.asarray(variables.state["mean"]),
                               X.mean(0) * (1 - 0.5 ** 4), rtol=1e-5)
    assert sorted(metrics) == ["grad_norm", "loss", "mae"]   # state is not a metric
    assert step.trace_count == 1

    evaluate = train.make_eval_step(loss)
    metrics = evaluate(variables, (X, Y), fl.random.key(9))
    assert sorted(metrics) == ["loss", "mae"]
    out, _ = model.apply(variables.params, variables.state, X)
    np.testing.assert_allclose(float(metrics["loss"]), np.mean((np.asarray(out) - Y) ** 2),
                               rtol=1e-5)


def test_supervised_accepts_dict_batches_and_plain_params():
    class Linear:
        def init(self, key):
            return {"w": fnp.ones(3)}, None

        def apply(self, params, state, x, *, key=None, train=False):
            assert state is None
            return x @ params["w"], state

    loss = train.supervised(Linear(), mse)
    value, aux = loss({"w": fnp.ones(3)}, {"x": X, "y": Y}, fl.random.key(0))
    np.testing.assert_allclose(float(value), np.mean((X.sum(1) - Y) ** 2), rtol=1e-5)
    assert aux == {}
    with pytest.raises(KeyError, match=r"fl.train.supervised: a dict batch needs the keys"):
        loss({"w": fnp.ones(3)}, {"inputs": X}, fl.random.key(0))
    with pytest.raises(TypeError, match=r"a batch is \(x, y\)"):
        loss({"w": fnp.ones(3)}, X, fl.random.key(0))


def test_accuracy_and_global_norm():
    logits = fnp.array([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert float(train.accuracy(logits, fnp.array([1, 0, 0, 0]))) == 0.75
    assert float(train.global_norm({"a": fnp.full((4,), 0.5), "b": [fnp.zeros(2)]})) == 1.0
    assert float(train.global_norm({})) == 0.0


def test_loss_function_errors():
    params = init_params()
    opt = optim.sgd(0.1)
    bad_tuple = train.make_step(lambda p, b, k: (loss_fn(p, b, k), 1.0, 2.0), opt)
    with pytest.raises(TypeError, match=r"fl.train.make_step: the loss function returned a "
                                        r"tuple of 3 values"):
        bad_tuple(params, opt.init(params), (X, Y), fl.random.key(0))
    clash = train.make_step(lambda p, b, k: (loss_fn(p, b, k), {"loss": 1.0}), opt)
    with pytest.raises(ValueError, match=r"may not use the names \['loss'\]"):
        clash(params, opt.init(params), (X, Y), fl.random.key(0))
