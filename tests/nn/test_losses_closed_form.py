"""nn activations and losses against NumPy closed forms (no PyTorch needed), their
derivatives against finite differences, numerical stability and errors."""

import math

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import nn


def data(*shape, seed=0, scale=3.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


_erf = np.vectorize(math.erf)
ACTIVATIONS = {
    "relu": (nn.relu, lambda x: np.maximum(x, 0.0)),
    "gelu": (nn.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "gelu_tanh": (lambda x: nn.gelu(x, approximate=True),
                  lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
    "silu": (nn.silu, lambda x: x / (1 + np.exp(-x))),
    "sigmoid": (nn.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (nn.tanh, np.tanh),
    "softmax": (nn.softmax, lambda x: np.exp(_log_softmax(x))),
    "log_softmax": (nn.log_softmax, _log_softmax),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_formula_and_finite_differences(name):
    ours, formula = ACTIVATIONS[name]
    x = data(4, 5)
    if name == "relu":
        x = np.where(np.abs(x) < 0.1, 0.5, x)  # finite differences across the kink disagree
    with fl.config.enable_x64():
        np.testing.assert_allclose(np.asarray(ours(x)), formula(x), rtol=1e-12, atol=1e-12)
        fl.debug.check_grads(lambda v: fnp.sum(ours(v) * fnp.arange(5.0)), (x,), order=2)


def test_relu_derivative_at_zero_is_zero():
    assert float(fl.grad(lambda v: nn.relu(v))(0.0)) == 0.0
    # in every mode, on a batch big enough for the zeros operand, and twice (the second
    # eager pass runs the compiled backward)
    x = np.zeros((64, 64), np.float32)
    x[::2] = np.linspace(-1.0, 1.0, 64, dtype=np.float32)
    want = (x > 0).astype(np.float32)
    loss = lambda v: fnp.sum(nn.relu(v))
    for g in (fl.grad(loss)(x), fl.grad(loss)(x), fl.jit(fl.grad(loss))(x),
              fl.jvp(nn.relu, (x,), (np.ones_like(x),))[1], fl.vmap(fl.grad(loss))(x)):
        np.testing.assert_array_equal(np.asarray(g), want)


def test_softmax_and_log_softmax_are_stable():
    x = fnp.array([[1e4, 0.0, -1e4]])
    assert np.isfinite(np.asarray(nn.log_softmax(x))).all()
    np.testing.assert_allclose(np.asarray(nn.softmax(x)), [[1.0, 0.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_matches_formula(smoothing):
    logits, labels = data(6, 5), np.array([0, 4, 2, 2, 1, 3])
    target = np.full((6, 5), smoothing / 5) + (1 - smoothing) * np.eye(5)[labels]
    want = -(target * _log_softmax(logits)).sum(axis=-1).mean()
    with fl.config.enable_x64():
        assert float(nn.cross_entropy(logits, labels, label_smoothing=smoothing)) == \
            pytest.approx(want, rel=1e-12)
        # with probabilities as targets, the same loss
        assert float(nn.cross_entropy(logits, target)) == pytest.approx(
            -(target * _log_softmax(logits)).sum(axis=-1).mean(), rel=1e-12)
        # d/dz mean CE = (softmax(z) - target) / n
        g = fl.grad(lambda z: nn.cross_entropy(z, labels, label_smoothing=smoothing))(logits)
        np.testing.assert_allclose(np.asarray(g), (np.exp(_log_softmax(logits)) - target) / 6,
                                   rtol=1e-10, atol=1e-12)


def test_cross_entropy_huge_logits_stay_finite():
    logits = fnp.array([[1e6, -1e6], [-1e6, 1e6]])
    assert float(nn.cross_entropy(logits, fnp.array([0, 1]))) == 0.0
    g = fl.grad(lambda z: nn.cross_entropy(z, fnp.array([1, 0])))(logits)
    assert np.isfinite(np.asarray(g)).all()


def test_nll_and_binary_cross_entropy_match_formulas():
    logits, labels = data(5, 4), np.array([3, 0, 1, 1, 2])
    with fl.config.enable_x64():
        log_probs = _log_softmax(logits)
        assert float(nn.nll(log_probs, labels)) == pytest.approx(
            -log_probs[np.arange(5), labels].mean(), rel=1e-12)
        z, y = data(10), np.random.default_rng(1).uniform(size=10)
        p = 1 / (1 + np.exp(-z))
        want = -(y * np.log(p) + (1 - y) * np.log1p(-p)).mean()
        assert float(nn.binary_cross_entropy(z, y, from_logits=True)) == pytest.approx(
            want, rel=1e-10)
        assert float(nn.binary_cross_entropy(p, y)) == pytest.approx(want, rel=1e-8)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses_match_formulas(reduction):
    pred, target = data(4, 3), data(4, 3, seed=1)
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    d = pred - target
    with fl.config.enable_x64():
        np.testing.assert_allclose(np.asarray(nn.mse(pred, target, reduction=reduction)),
                                   reduce(d * d), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(nn.l1(pred, target, reduction=reduction)),
                                   reduce(np.abs(d)), rtol=1e-12)
        for delta in (0.5, 2.0):
            huber = np.where(np.abs(d) < delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))
            np.testing.assert_allclose(
                np.asarray(nn.huber(pred, target, delta=delta, reduction=reduction)),
                reduce(huber), rtol=1e-12)


def test_loss_errors():
    with pytest.raises(ValueError, match=r"nn.cross_entropy: integer labels .*\(3,\).*\(4,\)"):
        nn.cross_entropy(fnp.zeros((3, 5)), fnp.zeros(4, dtype=fnp.int32))
    with pytest.raises(ValueError, match="reduction"):
        nn.mse(fnp.zeros(3), fnp.zeros(3), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.cross_entropy(fnp.zeros((3, 5)), fnp.zeros(3, dtype=fnp.int32), label_smoothing=2)
