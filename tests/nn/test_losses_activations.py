"""nn activations and losses against torch.nn.functional, values and gradients (skipped
without PyTorch; test_losses_closed_form.py checks them against NumPy formulas)."""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import nn

torch = pytest.importorskip("torch")
F = torch.nn.functional


def data(*shape, seed=0, scale=3.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def close(ours, theirs, atol=1e-5):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-4, atol=atol)


def value_and_torch_grad(fn, x):
    t = torch.from_numpy(x).requires_grad_()
    y = fn(t)
    y.sum().backward()
    return y, t.grad


ACTIVATIONS = [
    (nn.relu, F.relu),
    (nn.gelu, F.gelu),
    (lambda x: nn.gelu(x, approximate=True), lambda t: F.gelu(t, approximate="tanh")),
    (nn.silu, F.silu),
    (nn.sigmoid, torch.sigmoid),
    (nn.tanh, torch.tanh),
    (nn.softmax, lambda t: F.softmax(t, -1)),
    (nn.log_softmax, lambda t: F.log_softmax(t, -1)),
]


@pytest.mark.parametrize("ours,theirs", ACTIVATIONS)
def test_activation_values_and_grads(ours, theirs):
    x = data(4, 5)
    x[0, 0] = 0.0  # relu's kink: both say derivative 0
    y_t, g_t = value_and_torch_grad(theirs, x)
    close(ours(x), y_t)
    close(fl.grad(lambda x: fnp.sum(ours(x)))(x), g_t, atol=1e-4)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_integer_labels(smoothing):
    logits, labels = data(6, 5), np.array([0, 4, 2, 2, 1, 3])
    t = torch.from_numpy(logits).requires_grad_()
    loss_t = F.cross_entropy(t, torch.from_numpy(labels), label_smoothing=smoothing)
    loss_t.backward()

    def loss(z):
        return nn.cross_entropy(z, labels, label_smoothing=smoothing)
    close(loss(logits), loss_t)
    close(fl.grad(loss)(logits), t.grad)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_probabilities(smoothing):
    logits = data(6, 5)
    probs = np.array(nn.softmax(data(6, 5, seed=1)))
    loss_t = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(probs),
                             label_smoothing=smoothing)
    close(nn.cross_entropy(logits, probs, label_smoothing=smoothing), loss_t)


def test_nll_matches_cross_entropy_and_torch():
    logits, labels = data(5, 4), np.array([3, 0, 1, 1, 2])
    log_probs = nn.log_softmax(logits)
    close(nn.nll(log_probs, labels), F.nll_loss(torch.from_numpy(np.array(log_probs)),
                                                torch.from_numpy(labels)))
    close(nn.nll(log_probs, labels), nn.cross_entropy(logits, labels))


def test_binary_cross_entropy():
    logits, targets = data(10), np.random.default_rng(1).uniform(size=10).astype(np.float32)
    t_logits, t_targets = torch.from_numpy(logits), torch.from_numpy(targets)
    close(nn.binary_cross_entropy(logits, targets, from_logits=True),
          F.binary_cross_entropy_with_logits(t_logits, t_targets))
    probs = np.array(nn.sigmoid(logits))
    close(nn.binary_cross_entropy(probs, targets),
          F.binary_cross_entropy(torch.from_numpy(probs), t_targets), atol=1e-4)
    # Saturated probabilities: the log is clamped at -100, as in torch.
    with np.errstate(divide="ignore"):
        saturated = nn.binary_cross_entropy(fnp.array([0.0, 1.0]), fnp.array([1.0, 0.0]))
    close(saturated, 100.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses(reduction):
    pred, target = data(4, 3), data(4, 3, seed=1)
    p, t = torch.from_numpy(pred), torch.from_numpy(target)
    close(nn.mse(pred, target, reduction=reduction), F.mse_loss(p, t, reduction=reduction))
    close(nn.l1(pred, target, reduction=reduction), F.l1_loss(p, t, reduction=reduction))
    for delta in (0.5, 2.0):
        close(nn.huber(pred, target, delta=delta, reduction=reduction),
              F.huber_loss(p, t, delta=delta, reduction=reduction))


def test_huber_gradient_matches_torch():
    pred, target = data(20), data(20, seed=1)
    t = torch.from_numpy(pred).requires_grad_()
    F.huber_loss(t, torch.from_numpy(target), delta=1.5).backward()
    close(fl.grad(lambda p: nn.huber(p, target, delta=1.5))(pred), t.grad)
