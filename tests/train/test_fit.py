"""fl.train.fit: convergence and history, validation, early stopping, checkpoints that
reload, progress display (tqdm, plain fallback, off), gradient-health warnings, an fl.nn
model with BatchNorm state, resuming, errors."""

import sys
import warnings

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import data, optim, train

W_TRUE = np.array([1.5, -2.0, 0.5], np.float32)


def regression_loaders(n=256, batch_size=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ W_TRUE + 0.3).astype(np.float32)
    ds = data.ArrayDataset(x, y)
    train_ds, val_ds = data.random_split(ds, [n - 64, 64], fl.random.key(0))
    return (data.DataLoader(train_ds, batch_size, shuffle=True, seed=1),
            data.DataLoader(val_ds, batch_size))


def linear_loss(params, batch, key):
    x, y = batch
    err = x @ params["w"] + params["b"] - y
    return fnp.mean(err ** 2), {"mae": fnp.mean(fnp.abs(err))}


def zero_params():
    return {"w": fnp.zeros(3), "b": fnp.zeros(())}


def test_fit_converges_and_records_history():
    train_loader, val_loader = regression_loaders()
    params, opt_state, history = train.fit(linear_loss, zero_params(), optim.adam(0.1),
                                           train_loader, val_loader, epochs=25, progress=False)
    np.testing.assert_allclose(np.asarray(params["w"]), W_TRUE, atol=1e-2)
    np.testing.assert_allclose(float(params["b"]), 0.3, atol=1e-2)
    assert sorted(history) == ["grad_norm", "loss", "mae", "val_loss", "val_mae"]
    assert all(len(values) == 25 for values in history.values())
    assert all(isinstance(v, float) for v in history["val_loss"])
    assert history["loss"][-1] < 1e-3 * history["loss"][0]
    assert history["val_loss"][-1] < 1e-3
    assert int(opt_state[0].count) == 25 * len(train_loader)


def test_validation_loss_is_the_per_example_mean():
    # A last batch of 1 example must count 1/65th, not 1/2 (batch means are weighted).
    x = np.arange(65, dtype=np.float32)[:, None]
    loader = data.DataLoader(data.ArrayDataset(x, np.zeros(65, np.float32)), batch_size=64)
    _, _, history = train.fit(lambda p, b, k: fnp.mean(b[0][:, 0] * p), fnp.ones(()),
                              optim.sgd(0.0), loader, loader, epochs=1, progress=False,
                              grad_health=False)
    np.testing.assert_allclose(history["val_loss"][0], x.mean(), rtol=1e-6)
    np.testing.assert_allclose(history["loss"][0], x.mean(), rtol=1e-6)


def test_early_stopping_stops_after_patience_epochs():
    train_loader, val_loader = regression_loaders()
    stop = train.EarlyStopping(monitor="val_loss", patience=2)
    # lr 0: the validation loss never improves after the first epoch.
    _, _, history = train.fit(linear_loss, zero_params(), optim.sgd(0.0), train_loader,
                              val_loader, epochs=20, callbacks=[stop], progress=False)
    assert stop.stopped_epoch == 2
    assert len(history["val_loss"]) == 3


def test_early_stopping_restores_the_best_epoch():
    train_loader, val_loader = regression_loaders()
    seen = []

    class Record(train.Callback):
        def on_epoch_end(self, loop, logs):
            seen.append((logs["val_loss"], loop.params))

    # A learning rate far too high: the loss gets worse every epoch after the first.
    stop = train.EarlyStopping(patience=2, restore_best=True)
    params, _, history = train.fit(linear_loss, zero_params(), optim.sgd(1.5), train_loader,
                                   val_loader, epochs=10, callbacks=[Record(), stop],
                                   progress=False, grad_health=False)
    best_loss, best_params = min(seen, key=lambda pair: pair[0])
    assert len(history["val_loss"]) < 10
    assert params is best_params


def test_early_stopping_monitor_must_be_logged():
    train_loader, _ = regression_loaders()
    with pytest.raises(KeyError, match=r"monitor='val_loss' is not among the logged metrics "
                                       r"\['grad_norm', 'loss', 'mae'\] \(pass val_loader"):
        train.fit(linear_loss, zero_params(), optim.sgd(0.1), train_loader, epochs=1,
                  callbacks=[train.EarlyStopping()], progress=False)
    with pytest.raises(ValueError, match=r"mode must be 'min' or 'max'"):
        train.EarlyStopping(mode="lowest")


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_checkpoints_are_written_and_reload(tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    train_loader, val_loader = regression_loaders()
    ckpt = train.ModelCheckpoint(tmp_path / "ckpt", monitor="val_loss", suffix=suffix)
    opt = optim.adam(0.1)
    params, opt_state, history = train.fit(linear_loss, zero_params(), opt, train_loader,
                                           val_loader, epochs=4, callbacks=[ckpt],
                                           progress=False)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == sorted(
        ["best" + suffix, "last" + suffix])
    like = {"params": zero_params(), "opt_state": opt.init(zero_params()), "epoch": 0}
    last = fl.load(ckpt.last_path, like=like)
    assert last["epoch"] == 3
    for got, want in zip(fl.tree.leaves((last["params"], last["opt_state"])),
                         fl.tree.leaves((params, opt_state))):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert type(last["opt_state"][0]) is type(opt_state[0])
    best = fl.load(ckpt.best_path, like=like)   # loss falls every epoch: best is the last
    assert best["epoch"] == int(np.argmin(history["val_loss"])) == 3


def noisy_loss(params, batch, key):   # uses its key: a resumed run must get the same keys
    x, y = batch
    return fnp.mean((x @ params["w"] + params["b"] - y) ** 2 * fl.random.uniform(key, y.shape))


def test_resuming_from_a_checkpoint_continues_the_same_run(tmp_path):
    train_loader, _ = regression_loaders()
    opt = optim.adam(0.05)
    full, _, _ = train.fit(noisy_loss, zero_params(), opt, train_loader, epochs=4,
                           progress=False)
    ckpt = train.ModelCheckpoint(tmp_path, monitor="loss")
    train.fit(noisy_loss, zero_params(), opt, train_loader, epochs=2, callbacks=[ckpt],
              progress=False)
    saved = fl.load(ckpt.last_path, like={"params": zero_params(),
                                          "opt_state": opt.init(zero_params()), "epoch": 0})
    resumed, _, history = train.fit(noisy_loss, saved["params"], opt, train_loader,
                                    epochs=2, opt_state=saved["opt_state"],
                                    start_epoch=saved["epoch"] + 1, progress=False)
    assert len(history["loss"]) == 2
    np.testing.assert_allclose(np.asarray(resumed["w"]), np.asarray(full["w"]), rtol=1e-6)


def test_progress_uses_tqdm_when_installed(capsys):
    pytest.importorskip("tqdm")
    train_loader, _ = regression_loaders()
    train.fit(linear_loss, zero_params(), optim.sgd(0.1), train_loader, epochs=2)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "loss" in err


def test_progress_falls_back_to_plain_lines_without_tqdm(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)   # makes `import tqdm...` fail
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    train_loader, val_loader = regression_loaders()
    _, _, history = train.fit(linear_loss, zero_params(), optim.sgd(0.1), train_loader,
                              val_loader, epochs=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2  loss ") and "val_loss" in lines[0]
    assert f"val_loss {history['val_loss'][1]:.4g}" in lines[1]


def test_progress_off_prints_nothing(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    train_loader, _ = regression_loaders()
    train.fit(linear_loss, zero_params(), optim.sgd(0.1), train_loader, epochs=2,
              progress=False)
    assert capsys.readouterr() == ("", "")


def nan_loss(params, batch, key):
    x, y = batch
    # sqrt of a negative number for w["bad"]: NaN loss, NaN gradient for "bad" only.
    return fnp.mean((x @ params["w"] - y) ** 2) + fnp.sqrt(params["bad"] - 1.0)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_gradient_warning_on_a_nan_loss_names_the_leaf_once():
    train_loader, _ = regression_loaders()
    params = {"w": fnp.zeros(3), "bad": fnp.zeros(())}
    with pytest.warns(train.GradientWarning) as record:
        train.fit(nan_loss, params, optim.sgd(0.1), train_loader, epochs=2, progress=False)
    messages = [str(w.message) for w in record if issubclass(w.category,
                                                            train.GradientWarning)]
    assert len(messages) == 1
    assert "non-finite gradient at epoch 0, step 1" in messages[0]
    assert "Non-finite gradient in ['bad']" in messages[0]
    assert "['w']" not in messages[0]


def test_gradient_warnings_for_exploding_and_vanishing_gradients():
    train_loader, _ = regression_loaders()

    def scaled(scale):
        def loss(params, batch, key):
            x, y = batch
            return fnp.mean((x @ params["w"] - y) ** 2) + scale * fnp.sum(params["big"] ** 2)
        return loss

    params = {"w": fnp.zeros(3), "big": fnp.ones(2)}
    with pytest.warns(train.GradientWarning, match=r"exploding gradient.*Largest leaf: "
                                                   r"\['big'\]"):
        train.fit(scaled(1e6), params, optim.sgd(0.0), train_loader, epochs=1,
                  progress=False)
    health = train.GradientHealth(vanishing=1e3)   # everything below 1e3 is "vanishing"
    with pytest.warns(train.GradientWarning, match=r"vanishing gradient.*Smallest leaf: "):
        train.fit(scaled(1.0), params, optim.sgd(0.0), train_loader, epochs=1,
                  callbacks=[health], progress=False)
    assert health.warned == {"vanishing"}


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_healthy_training_and_grad_health_off_warn_nothing():
    train_loader, _ = regression_loaders()
    with warnings.catch_warnings():
        warnings.simplefilter("error", train.GradientWarning)
        train.fit(linear_loss, zero_params(), optim.adam(0.1), train_loader, epochs=2,
                  progress=False)
        params = {"w": fnp.zeros(3), "bad": fnp.zeros(())}
        train.fit(nan_loss, params, optim.sgd(0.1), train_loader, epochs=1, progress=False,
                  grad_health=False)


def test_callback_hooks_and_plain_iterables():
    batches = [(np.ones((4, 3), np.float32), np.ones(4, np.float32))] * 3
    calls = []

    class Spy(train.Callback):
        def on_fit_start(self, loop):
            calls.append("start")

        def on_step_end(self, loop, metrics):
            calls.append(("step", loop.step, type(metrics["loss"])))

        def on_epoch_end(self, loop, logs):
            calls.append(("epoch", loop.epoch))

        def on_fit_end(self, loop):
            calls.append("end")

    train.fit(linear_loss, zero_params(), optim.sgd(0.01), batches, epochs=2,
              callbacks=[Spy()], progress=False)
    assert calls == (["start"] + [("step", i, float) for i in (1, 2, 3)] + [("epoch", 0)]
                     + [("step", i, float) for i in (4, 5, 6)] + [("epoch", 1), "end"])


def test_donating_fit_gives_the_same_result():
    train_loader, _ = regression_loaders()
    a, _, _ = train.fit(linear_loss, zero_params(), optim.adam(0.1), train_loader, epochs=3,
                        progress=False)
    start = zero_params()
    b, _, _ = train.fit(linear_loss, start, optim.adam(0.1), train_loader, epochs=3,
                        progress=False, donate=True)
    np.testing.assert_allclose(np.asarray(a["w"]), np.asarray(b["w"]), rtol=1e-6)
    with pytest.raises(ValueError, match=r"restore_best=True .* donate=True"):
        train.fit(linear_loss, b, optim.adam(0.1), train_loader, epochs=1, progress=False,
                  donate=True, callbacks=[train.EarlyStopping("loss", restore_best=True)])


def test_fit_errors():
    train_loader, _ = regression_loaders()

    class Model:
        def init(self, key):
            return {"w": fnp.zeros(3)}, {}

        def apply(self, params, state, x, *, key=None, train=False):
            return x @ params["w"], state

    with pytest.raises(TypeError, match=r"fl.train.fit: training a model needs loss="):
        train.fit(Model(), {"w": fnp.zeros(3)}, optim.sgd(0.1), train_loader)
    with pytest.raises(TypeError, match=r"params, state = model.init\(key\)"):
        train.fit(Model(), {"w": fnp.zeros(3)}, optim.sgd(0.1), train_loader,
                  loss=lambda out, y: fnp.mean((out - y) ** 2))
    with pytest.raises(TypeError, match=r"loss= and metrics= go with a model"):
        train.fit(linear_loss, zero_params(), optim.sgd(0.1), train_loader, loss=len)
    with pytest.raises(ValueError, match=r"yielded no batches in epoch 0"):
        train.fit(linear_loss, zero_params(), optim.sgd(0.1), [], progress=False)


def test_fit_an_nn_model_with_batchnorm_state():
    nn = pytest.importorskip("functorch_lite.nn")
    if not all(hasattr(nn, name) for name in ("Sequential", "Linear", "BatchNorm1d")):
        pytest.skip("functorch_lite.nn has no Sequential/Linear/BatchNorm1d yet")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 4)).astype(np.float32) * 3.0 + 1.0
    y = (x[:, 0] + x[:, 1] > 2.0).astype(np.int32)
    ds = data.ArrayDataset(x, y)
    train_ds, val_ds = data.random_split(ds, [384, 128], fl.random.key(0))
    loader = data.DataLoader(train_ds, 64, shuffle=True)
    model = nn.Sequential([nn.Linear(4, 16), nn.BatchNorm1d(16), nn.relu, nn.Linear(16, 2)])
    params, state = model.init(fl.random.key(1))
    variables, _, history = train.fit(
        model, params, optim.adam(0.02), loader, data.DataLoader(val_ds, 128), epochs=15,
        loss=nn.cross_entropy, metrics={"accuracy": train.accuracy}, state=state,
        progress=False)
    new_params, new_state = variables
    assert history["val_accuracy"][-1] >= 0.9
    assert history["accuracy"][-1] >= 0.9
    stats = [s for s in fl.tree.leaves(new_state)]
    assert stats and any(np.abs(np.asarray(s) - np.asarray(s0)).max() > 0.1
                         for s, s0 in zip(stats, fl.tree.leaves(state)))
