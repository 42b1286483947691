"""Layers against direct NumPy implementations of their definitions (no PyTorch needed:
test_layers_vs_torch.py compares with PyTorch where it is installed)."""

import numpy as np
import pytest

import functorch_lite as fl
from functorch_lite import nn, random


def _numpy(tree):
    return fl.tree.map(np.asarray, tree)


def _conv2d(x, w, b, stride, padding):
    """Cross-correlation by the definition: out[n, o, i, j] = b[o] + sum over c, u, v of
    w[o, c, u, v] * xpad[n, c, i*s + u, j*s + v]."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.empty((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("ncuv,ocuv->no", patch, w) + b
    return out


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1)])
def test_conv2d_is_the_cross_correlation(stride, padding):
    layer = nn.Conv2d(2, 3, 3, stride=stride, padding=padding)
    with fl.config.enable_x64():
        params, state = layer.init(random.key(0))
        params = fl.tree.map(lambda p: p.astype("float64"), params)
        x = np.random.default_rng(0).standard_normal((2, 2, 7, 6))
        out, _ = layer.apply(params, state, x)
        p = _numpy(params)
        np.testing.assert_allclose(np.asarray(out), _conv2d(x, p["weight"], p["bias"],
                                                            stride, padding), rtol=1e-12)


def test_max_pool_takes_each_window_maximum():
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 6)).astype(np.float32)
    out, _ = nn.MaxPool2d(2).apply({}, {}, x)
    want = x.reshape(1, 2, 2, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(np.asarray(out), want)


def test_lstm_follows_the_gate_equations():
    layer = nn.LSTM(3, 4)
    with fl.config.enable_x64():
        params, state = layer.init(random.key(1))
        params = fl.tree.map(lambda p: p.astype("float64"), params)
        x = np.random.default_rng(2).standard_normal((5, 2, 3))  # time-major
        (out, (h_n, c_n)), _ = layer.apply(params, state, x)
    p = _numpy(params)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h, c = np.zeros((2, 4)), np.zeros((2, 4))
    outs = []
    for x_t in x:  # gates in PyTorch's order: input, forget, cell, output
        z = x_t @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        i, f, g, o = np.split(z, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outs.append(h)
    np.testing.assert_allclose(np.asarray(out), np.stack(outs), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(h_n), h, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(c_n), c, rtol=1e-10)


def test_batchnorm_normalizes_with_batch_stats_and_tracks_running_stats():
    layer = nn.BatchNorm(3)
    params, state = layer.init(random.key(0))
    x = (np.random.default_rng(3).standard_normal((8, 3)) * 2 + 1).astype(np.float32)
    out, new_state = layer.apply(params, state, x, train=True)
    mean, var = x.mean(0), x.var(0)
    np.testing.assert_allclose(np.asarray(out), (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4,
                               atol=1e-5)
    # PyTorch's rule: momentum 0.1, the running variance unbiased
    np.testing.assert_allclose(np.asarray(new_state["running_mean"]), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(new_state["running_var"]),
                               0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-5)
    out_eval, same = layer.apply(params, new_state, x, train=False)
    rm, rv = np.asarray(new_state["running_mean"]), np.asarray(new_state["running_var"])
    np.testing.assert_allclose(np.asarray(out_eval), (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-4,
                               atol=1e-5)


def test_layernorm_normalizes_the_last_axis():
    layer = nn.LayerNorm(6)
    params, state = layer.init(random.key(0))
    x = np.random.default_rng(4).standard_normal((3, 6)).astype(np.float32) * 3
    out, _ = layer.apply(params, state, x)
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-4, atol=1e-5)


def test_attention_is_softmax_of_scaled_scores():
    layer = nn.MultiHeadAttention(8, 2)
    with fl.config.enable_x64():
        params, state = layer.init(random.key(5))
        params = fl.tree.map(lambda p: p.astype("float64"), params)
        x = np.random.default_rng(6).standard_normal((4, 1, 8))  # (length, batch, embed)
        out, _ = layer.apply(params, state, x)
    p = _numpy(params)
    q, k, v = np.split(x[:, 0] @ p["in_proj_weight"].T + p["in_proj_bias"], 3, axis=-1)
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        s = q[:, sl] @ k[:, sl].T / np.sqrt(4)
        a = np.exp(s - s.max(-1, keepdims=True))
        heads.append((a / a.sum(-1, keepdims=True)) @ v[:, sl])
    want = np.concatenate(heads, -1) @ p["out_proj_weight"].T + p["out_proj_bias"]
    np.testing.assert_allclose(np.asarray(out)[:, 0], want, rtol=1e-10)
