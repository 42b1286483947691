"""The Module protocol: init/apply under grad, jit and vmap; dropout; summary; errors;
initializers; and a small model trained end to end."""

import math

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import nn, optim


class ConvNet(nn.Module):
    """A user module: submodules as attributes, BatchNorm state threaded by hand."""

    def __init__(self, classes=3):
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm(4)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.25)
        self.head = nn.Linear(4 * 3 * 3, classes)

    def forward(self, params, state, x, *, key, train):
        x = nn.relu(self.conv(params["conv"], x))
        x, state["bn"] = self.bn.apply(params["bn"], state["bn"], x, train=train)
        x = self.pool(params["pool"], x)
        x = self.drop(params["drop"], fnp.reshape(x, (x.shape[0], -1)), key=key, train=train)
        return self.head(params["head"], x), state


def images(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, n)


def mlp():
    return nn.Sequential([nn.Linear(4, 16), nn.gelu, nn.LayerNorm(16), nn.Dropout(0.2),
                          nn.Linear(16, 3)])


def assert_trees_close(a, b, **kw):
    for x, y in zip(fl.tree.leaves(a), fl.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


# ------------------------------------------------------------------------------------------
# init / apply structure
# ------------------------------------------------------------------------------------------
def test_init_structure_and_determinism():
    model = ConvNet()
    params, state = model.init(fl.random.key(0))
    assert list(params) == ["conv", "bn", "pool", "drop", "head"]
    assert set(params["conv"]) == {"weight", "bias"} and params["pool"] == {}
    assert set(state["bn"]) == {"running_mean", "running_var"}
    assert fl.tree.leaves(state["conv"]) == []
    assert params["head"]["weight"].dtype == np.float32
    again, _ = model.init(fl.random.key(0))
    assert_trees_close(params, again, rtol=0, atol=0)
    other, _ = model.init(fl.random.key(1))
    assert not np.allclose(np.asarray(params["conv"]["weight"]),
                           np.asarray(other["conv"]["weight"]))
    # Different submodules get different keys.
    sizes = nn.Sequential([nn.Linear(3, 3), nn.Linear(3, 3)]).init(fl.random.key(0))[0]
    assert not np.allclose(np.asarray(sizes[0]["weight"]), np.asarray(sizes[1]["weight"]))


def test_apply_does_not_mutate_callers_state():
    model = ConvNet()
    params, state = model.init(fl.random.key(0))
    before = state["bn"]
    x, _ = images()
    _, new_state = model.apply(params, state, x, key=fl.random.key(1), train=True)
    assert state["bn"] is before
    assert not np.allclose(np.asarray(new_state["bn"]["running_mean"]), 0.0)


def test_forward_must_return_out_and_state():
    class Bad(nn.Module):
        def forward(self, params, state, x, *, key, train):
            return x

    with pytest.raises(TypeError, match=r"Bad.forward must return \(out, state\).*stateless"):
        Bad().apply({}, {}, fnp.ones(2))
    with pytest.raises(TypeError, match=r"BatchNorm carries state.*apply"):
        nn.BatchNorm(3)({}, fnp.ones((2, 3)))


def test_stateless_user_module_and_custom_init():
    class Scale(nn.Module):
        stateless = True

        def __init__(self, n):
            self.n = n

        def init(self, key):
            return {"scale": fnp.ones(self.n)}, {}

        def forward(self, params, state, x, *, key, train):
            return x * params["scale"]

    layer = Scale(3)
    params, state = layer.init(fl.random.key(0))
    np.testing.assert_allclose(np.asarray(layer(params, fnp.full(3, 2.0))), 2.0)
    out, new_state = layer.apply(params, state, fnp.ones(3))
    assert new_state == {}


# ------------------------------------------------------------------------------------------
# Transforms
# ------------------------------------------------------------------------------------------
def test_gradients_of_a_small_model_match_torch():
    torch = pytest.importorskip("torch")
    model = nn.Sequential([nn.Conv2d(1, 2, 3), nn.tanh, nn.Flatten(), nn.Linear(2 * 4 * 4, 3)])
    params, state = model.init(fl.random.key(0))
    x, y = images()

    def loss(params):
        logits, _ = model.apply(params, state, x)
        return nn.cross_entropy(logits, y)

    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                 torch.nn.Linear(32, 3))
    with torch.no_grad():
        for i in (0, 3):
            theirs[i].weight.copy_(torch.from_numpy(np.array(params[i]["weight"])))
            theirs[i].bias.copy_(torch.from_numpy(np.array(params[i]["bias"])))
    loss_t = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
    loss_t.backward()
    value, grads = fl.value_and_grad(loss)(params)
    np.testing.assert_allclose(float(value), loss_t.item(), rtol=1e-5)
    for i in (0, 3):
        for name in ("weight", "bias"):
            np.testing.assert_allclose(np.asarray(grads[i][name]),
                                       getattr(theirs[i], name).grad.numpy(), rtol=1e-4,
                                       atol=1e-6)


def test_jit_matches_eager_in_train_and_eval():
    model = ConvNet()
    params, state = model.init(fl.random.key(0))
    x, y = images()
    key = fl.random.key(7)

    def step(params, state, x, key):
        def loss(params):
            logits, new_state = model.apply(params, state, x, key=key, train=True)
            return nn.cross_entropy(logits, y), new_state
        (value, new_state), grads = fl.value_and_grad(loss, has_aux=True)(params)
        return value, new_state, grads

    eager = step(params, state, x, key)
    jitted = fl.jit(step)
    assert_trees_close(jitted(params, state, x, key), eager, rtol=1e-5, atol=1e-6)
    evaluate = fl.jit(lambda p, s, x: model.apply(p, s, x)[0])
    assert_trees_close(evaluate(params, state, x), model.apply(params, state, x)[0],
                       rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer,shape", [
    (nn.LSTM(3, 4), (5, 3)),
    (nn.GRU(3, 4, batch_first=True), (5, 3)),
    (nn.MultiHeadAttention(6, 2), (4, 6)),
    (nn.Conv1d(2, 3, 3, padding=1), (2, 7)),
])
def test_vmap_over_unbatched_examples_matches_the_batched_layer(layer, shape):
    params, _ = layer.init(fl.random.key(0))
    xs = np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32)
    mapped = fl.vmap(lambda x: layer(params, x))(xs)
    looped = [layer(params, x) for x in xs]
    stacked = fl.tree.map(lambda *a: fnp.stack(a), *looped)
    assert_trees_close(mapped, stacked, rtol=1e-5, atol=1e-6)


def test_vmap_of_per_example_gradients_and_jit_of_recurrent_grads():
    model = mlp()
    params, state = model.init(fl.random.key(0))
    xs = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    labels = np.array([0, 1, 2, 1, 0])

    def loss(params, x, label):
        logits, _ = model.apply(params, state, x[None])
        return nn.cross_entropy(logits, label[None])

    per_example = fl.vmap(fl.grad(loss), in_axes=(None, 0, 0))(params, xs, labels)
    first = fl.grad(loss)(params, xs[0], labels[0])
    assert_trees_close(fl.tree.map(lambda g: g[0], per_example), first, rtol=1e-5, atol=1e-6)

    lstm = nn.LSTM(3, 4)
    lstm_params, _ = lstm.init(fl.random.key(1))
    seq = np.random.default_rng(1).standard_normal((6, 2, 3)).astype(np.float32)

    def lstm_loss(p):
        return fnp.sum(lstm(p, seq)[0] ** 2)
    assert_trees_close(fl.jit(fl.grad(lstm_loss))(lstm_params), fl.grad(lstm_loss)(lstm_params),
                       rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------
# Dropout
# ------------------------------------------------------------------------------------------
def test_dropout_statistics_and_determinism():
    drop = nn.Dropout(0.3)
    x = fnp.ones((200, 100))
    y = np.asarray(drop({}, x, key=fl.random.key(0), train=True))
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.02  # unbiased in expectation
    same = np.asarray(drop({}, x, key=fl.random.key(0), train=True))
    other = np.asarray(drop({}, x, key=fl.random.key(1), train=True))
    np.testing.assert_array_equal(y, same)
    assert (other != y).any()
    np.testing.assert_array_equal(np.asarray(drop({}, x)), 1.0)
    jitted = fl.jit(lambda x, k: drop({}, x, key=k, train=True))(x, fl.random.key(0))
    np.testing.assert_array_equal(np.asarray(jitted), y)


def test_dropout_needs_a_key_in_training():
    model = mlp()
    params, state = model.init(fl.random.key(0))
    with pytest.raises(ValueError, match=r"Dropout\(p=0.2\).*train=True needs a PRNG key"):
        model.apply(params, state, fnp.ones((2, 4)), train=True)


def test_sequential_gives_each_layer_its_own_key():
    model = nn.Sequential([nn.Dropout(0.5), nn.Dropout(0.5)])
    params, state = model.init(fl.random.key(0))
    first = nn.Dropout(0.5)({}, fnp.ones(1000), key=fl.random.key(3), train=True)
    out, _ = model.apply(params, state, fnp.ones(1000), key=fl.random.key(3), train=True)
    # Two independent masks keep ~1/4 of the entries (one reused mask would keep ~1/2).
    assert abs(float(fnp.mean(out != 0)) - 0.25) < 0.05
    assert not np.array_equal(np.asarray(first) != 0, np.asarray(out) != 0)


# ------------------------------------------------------------------------------------------
# Summary, counting, penalties
# ------------------------------------------------------------------------------------------
def test_summary_and_count_params():
    model = nn.Sequential([nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm(4), nn.relu,
                           nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)])
    params, _ = model.init(fl.random.key(0))
    assert nn.count_params(params) == (4 * 9 + 4) + (4 + 4) + (64 * 10 + 10)
    text = model.summary(params, fnp.ones((2, 1, 8, 8)))
    lines = text.splitlines()
    assert lines[-1] == "Total params: 698"
    conv_line = next(line for line in lines if "(0): Conv2d(1, 4" in line)
    assert "40" in conv_line and "weight (4, 1, 3, 3)" in conv_line
    assert "-> (2, 4, 8, 8)" in conv_line
    assert any("(5): Linear(in_features=64, out_features=10" in line and "-> (2, 10)" in line
               for line in lines)
    assert "(2): Lambda(relu)" in text
    # Without an input (the DESIGN.md example: print(model.summary(params))): no shapes.
    text = model.summary(params)
    assert text.splitlines()[-1] == "Total params: 698" and "->" not in text
    user = ConvNet()
    user_params, _ = user.init(fl.random.key(0))
    text = user.summary(user_params)
    assert "(head): Linear(in_features=36, out_features=3, bias=True)" in text
    assert text.endswith(f"Total params: {nn.count_params(user_params):,}")
    assert repr(user).startswith("ConvNet(\n  (conv): Conv2d(1, 4, kernel_size=(3, 3)")


def test_l2_penalty():
    params = {"w": fnp.array([[1.0, 2.0]]), "b": fnp.array([3.0]), "steps": fnp.array([5])}
    np.testing.assert_allclose(float(nn.l2_penalty(params)), 14.0)
    grads = fl.grad(nn.l2_penalty)({"w": params["w"], "b": params["b"]})
    np.testing.assert_allclose(np.asarray(grads["w"]), [[2.0, 4.0]])


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer,x,pattern", [
    (nn.Linear(4, 8), fnp.ones((3, 5)),
     r"nn.Linear\(in_features=4.*expected input of shape \(\.\.\., 4\), got shape \(3, 5\)"),
    (nn.Conv2d(3, 8, 3), fnp.ones((2, 1, 9, 9)),
     r"nn.Conv2d\(3, 8.*expected .*\(NCHW\).*C=3, got shape \(2, 1, 9, 9\)"),
    (nn.Conv2d(1, 8, 5), fnp.ones((1, 1, 3, 3)), r"spatial size \(3, 3\) is smaller"),
    (nn.LayerNorm(4), fnp.ones((2, 3)), r"LayerNorm\(\(4,\).*\(\.\.\., 4\), got shape \(2, 3\)"),
    (nn.LSTM(3, 4), fnp.ones((5, 2, 2)), r"LSTM\(3, 4.*H_in=3, got shape \(5, 2, 2\)"),
    (nn.MaxPool2d(2), fnp.ones((4, 4)), r"MaxPool2d.*\(N, C, H, W\).*got shape \(4, 4\)"),
])
def test_wrong_input_shape_names_the_layer(layer, x, pattern):
    params, state = layer.init(fl.random.key(0))
    with pytest.raises(ValueError, match=pattern):
        layer.apply(params, state, x)


def test_batchnorm_wrong_channels():
    bn = nn.BatchNorm(3)
    params, state = bn.init(fl.random.key(0))
    with pytest.raises(ValueError, match=r"BatchNorm\(3.*\(N, 3, \*spatial\).*got shape \(2, 4\)"):
        bn.apply(params, state, fnp.ones((2, 4)), train=True)


def test_params_from_another_model_name_the_keys():
    model, other = ConvNet(), mlp()
    params, state = model.init(fl.random.key(0))
    with pytest.raises(ValueError, match=r"ConvNet.apply: params\['head'\] do not match "
                                         r"Linear: missing keys \['bias'\]"):
        broken = dict(params, head={"weight": params["head"]["weight"]})
        model.apply(broken, state, images()[0])
    renamed = dict(params)
    renamed["classifier"] = renamed.pop("head")
    with pytest.raises(ValueError, match=r"missing keys \['head'\], unexpected keys "
                                         r"\['classifier'\]"):
        model.apply(renamed, state, images()[0])
    other_params, other_state = other.init(fl.random.key(0))
    with pytest.raises(ValueError, match=r"Sequential.apply: params should be a list of 5"):
        other.apply(params, other_state, fnp.ones((2, 4)))
    with pytest.raises(ValueError, match=r"ConvNet.apply: params should be a dict"):
        model.apply(other_params, state, images()[0])


# ------------------------------------------------------------------------------------------
# Initializers
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,variance", [
    ("glorot_uniform", 2 / (200 + 100)), ("glorot_normal", 2 / (200 + 100)),
    ("xavier_uniform", 2 / (200 + 100)), ("he_uniform", 2 / 100), ("he_normal", 2 / 100),
    ("lecun_uniform", 1 / 100), ("lecun_normal", 1 / 100),
])
def test_initializer_variances(name, variance):
    w = np.asarray(getattr(nn.initializers, name)(fl.random.key(0), (200, 100)))
    assert w.dtype == np.float32 and w.shape == (200, 100)
    assert abs(w.mean()) < 0.05 * math.sqrt(variance)
    assert abs(w.var() / variance - 1) < 0.05
    if "uniform" in name:
        assert np.abs(w).max() <= math.sqrt(3 * variance) + 1e-6


def test_pytorch_default_linear_and_conv_init_bounds():
    params, _ = nn.Conv2d(4, 6, 3).init(fl.random.key(0))
    bound = 1 / math.sqrt(4 * 9)
    for name in ("weight", "bias"):
        values = np.asarray(params[name])
        assert np.abs(values).max() <= bound
    weight = np.asarray(nn.Linear(400, 300).init(fl.random.key(0))[0]["weight"])
    np.testing.assert_allclose(weight.var(), 1 / (3 * 400), rtol=0.05)


def test_orthogonal_zeros_ones_and_x64():
    q = np.asarray(nn.initializers.orthogonal(fl.random.key(0), (4, 6)))
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-5)
    q = np.asarray(nn.initializers.orthogonal(fl.random.key(0), (6, 2, 2), gain=2.0))
    flat = q.reshape(6, 4)
    np.testing.assert_allclose(flat.T @ flat, 4 * np.eye(4), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(nn.initializers.zeros(None, (2, 2))), 0)
    np.testing.assert_array_equal(np.asarray(nn.initializers.ones(None, (3,))), 1)
    with fl.config.enable_x64(True):
        assert nn.Linear(2, 2).init(fl.random.key(0))[0]["weight"].dtype == np.float64


# ------------------------------------------------------------------------------------------
# End to end
# ------------------------------------------------------------------------------------------
def test_training_a_small_cnn_reduces_the_loss():
    model = ConvNet()
    params, state = model.init(fl.random.key(0))
    x, y = images(32)
    opt = optim.adam(1e-2)
    opt_state = opt.init(params)

    @fl.jit
    def step(params, state, opt_state, key):
        def loss(params):
            logits, new_state = model.apply(params, state, x, key=key, train=True)
            return nn.cross_entropy(logits, y), new_state
        (value, state), grads = fl.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), state, opt_state, value

    def eval_loss(params, state):
        return float(nn.cross_entropy(model.apply(params, state, x)[0], y))

    before = eval_loss(params, state)
    for key in fl.random.split(fl.random.key(1), 30):
        params, state, opt_state, _ = step(params, state, opt_state, key)
    assert eval_loss(params, state) < 0.6 * before
    assert step.trace_count == 1
