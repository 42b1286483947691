"""Each fl.nn layer's forward pass against PyTorch's, with the weights copied over."""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import nn

torch = pytest.importorskip("torch")


def to_torch(x):
    return torch.from_numpy(np.array(x))


def load(torch_module, params, rename=None):
    """Copy our params into a torch module (names equal unless ``rename`` maps them)."""
    rename = rename or {}
    state = {rename.get(k, k): to_torch(v) for k, v in params.items()}
    missing = set(state) - set(torch_module.state_dict())
    assert not missing, f"no such torch parameters: {missing}"
    torch_module.load_state_dict(state, strict=False)
    return torch_module


def close(ours, theirs, atol=1e-5):
    np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), rtol=1e-4,
                               atol=atol)


def data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_linear():
    layer = nn.Linear(5, 3)
    params, _ = layer.init(fl.random.key(0))
    x = data(4, 2, 5)
    close(layer(params, x), load(torch.nn.Linear(5, 3), params)(to_torch(x)))


def test_linear_without_bias():
    layer = nn.Linear(5, 3, bias=False)
    params, _ = layer.init(fl.random.key(0))
    assert set(params) == {"weight"}
    x = data(4, 5)
    close(layer(params, x), load(torch.nn.Linear(5, 3, bias=False), params)(to_torch(x)))


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2)])
def test_conv1d(stride, padding, dilation):
    layer = nn.Conv1d(3, 4, 3, stride=stride, padding=padding, dilation=dilation)
    params, _ = layer.init(fl.random.key(1))
    x = data(2, 3, 11)
    theirs = torch.nn.Conv1d(3, 4, 3, stride=stride, padding=padding, dilation=dilation)
    close(layer(params, x), load(theirs, params)(to_torch(x)))


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 0), (3, 2, 1), ((2, 3), (2, 1), (0, 1))])
def test_conv2d(kernel, stride, padding):
    layer = nn.Conv2d(3, 5, kernel, stride=stride, padding=padding)
    params, _ = layer.init(fl.random.key(2))
    x = data(2, 3, 9, 8)
    theirs = torch.nn.Conv2d(3, 5, kernel, stride=stride, padding=padding)
    close(layer(params, x), load(theirs, params)(to_torch(x)))


def test_conv2d_unbatched_input():
    layer = nn.Conv2d(2, 3, 3, padding=1)
    params, _ = layer.init(fl.random.key(2))
    x = data(2, 6, 6)
    close(layer(params, x), load(torch.nn.Conv2d(2, 3, 3, padding=1), params)(to_torch(x)))


@pytest.mark.parametrize("kernel,stride,padding", [(2, None, 0), (3, 2, 1), ((3, 2), 1, 0)])
def test_pools(kernel, stride, padding):
    x = data(2, 3, 9, 8)
    for ours, theirs in [(nn.MaxPool2d, torch.nn.MaxPool2d), (nn.AvgPool2d, torch.nn.AvgPool2d)]:
        close(ours(kernel, stride, padding)({}, x),
              theirs(kernel, stride, padding)(to_torch(x)))


def test_flatten_and_embedding():
    x = data(2, 3, 4)
    close(nn.Flatten()({}, x), torch.nn.Flatten()(to_torch(x)))
    emb = nn.Embedding(10, 4)
    params, _ = emb.init(fl.random.key(3))
    idx = np.array([[1, 9, 0], [3, 3, 2]])
    close(emb(params, idx), load(torch.nn.Embedding(10, 4), params)(torch.from_numpy(idx)))


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (4, 3, 5, 2)])
def test_batchnorm_train_then_eval(shape):
    bn = nn.BatchNorm(3, momentum=0.2)
    params, state = bn.init(fl.random.key(0))
    params = {"weight": fnp.array([1.0, 2.0, 0.5]), "bias": fnp.array([0.0, -1.0, 3.0])}
    cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}
    theirs = load(cls[len(shape)](3, momentum=0.2), params)
    for seed in range(3):
        x = data(*shape, seed=seed) * 2 + 1
        y, state = bn.apply(params, state, x, train=True)
        close(y, theirs.train()(to_torch(x)))
    close(state["running_mean"], theirs.running_mean)
    close(state["running_var"], theirs.running_var)
    x = data(*shape, seed=9)
    y, new_state = bn.apply(params, state, x, train=False)
    close(y, theirs.eval()(to_torch(x)))
    assert new_state is state or all(new_state[k] is state[k] for k in state)


def test_layernorm():
    ln = nn.LayerNorm((4, 5))
    params = {"weight": fnp.asarray(data(4, 5, seed=1)), "bias": fnp.asarray(data(4, 5, seed=2))}
    x = data(3, 4, 5)
    close(ln(params, x), load(torch.nn.LayerNorm((4, 5)), params)(to_torch(x)))


def _recurrent_pair(kind, batch_first, **kw):
    ours = getattr(nn, kind)(3, 4, batch_first=batch_first, **kw)
    params, _ = ours.init(fl.random.key(4))
    theirs = getattr(torch.nn, kind)(3, 4, batch_first=batch_first, **kw)
    return ours, params, load(theirs, params, {k: k + "_l0" for k in params})


@pytest.mark.parametrize("kind", ["RNN", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_rnn_and_gru(kind, batch_first):
    ours, params, theirs = _recurrent_pair(kind, batch_first)
    x = data(2, 6, 3) if batch_first else data(6, 2, 3)
    h0 = data(2, 4, seed=5)
    out, h = ours(params, x, h0=h0)
    out_t, h_t = theirs(to_torch(x), to_torch(h0)[None])
    close(out, out_t)
    close(h, h_t[0])


def test_rnn_relu_unbatched():
    ours, params, theirs = _recurrent_pair("RNN", False, nonlinearity="relu")
    x = data(6, 3)
    out, h = ours(params, x)
    out_t, h_t = theirs(to_torch(x))
    close(out, out_t)
    close(h, h_t[0])


def test_lstm():
    ours, params, theirs = _recurrent_pair("LSTM", True)
    x = data(2, 7, 3)
    h0, c0 = data(2, 4, seed=1), data(2, 4, seed=2)
    out, (h, c) = ours(params, x, h0=(h0, c0))
    out_t, (h_t, c_t) = theirs(to_torch(x), (to_torch(h0)[None], to_torch(c0)[None]))
    close(out, out_t)
    close(h, h_t[0])
    close(c, c_t[0])


def _mha_pair(batch_first):
    ours = nn.MultiHeadAttention(8, 2, batch_first=batch_first)
    params, _ = ours.init(fl.random.key(5))
    # Nonzero biases so the test sees them.
    params["in_proj_bias"] = fnp.asarray(data(24, seed=3))
    params["out_proj_bias"] = fnp.asarray(data(8, seed=4))
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first)
    rename = {"out_proj_weight": "out_proj.weight", "out_proj_bias": "out_proj.bias"}
    return ours, params, load(theirs, params, rename)


def test_multihead_self_attention_with_causal_mask():
    ours, params, theirs = _mha_pair(batch_first=True)
    x = data(3, 5, 8)
    causal = np.triu(np.ones((5, 5), bool), k=1)
    out, weights = ours(params, x, attn_mask=causal, need_weights=True)
    out_t, weights_t = theirs(*[to_torch(x)] * 3, attn_mask=torch.from_numpy(causal))
    close(out, out_t)
    close(weights, weights_t)


def test_multihead_cross_attention_with_padding_and_float_mask():
    ours, params, theirs = _mha_pair(batch_first=False)
    query, memory = data(4, 2, 8, seed=1), data(6, 2, 8, seed=2)
    values = data(6, 2, 8, seed=3)
    # Both masks float (torch deprecates mixing a bool and a float mask).
    padding = np.where([[False] * 5 + [True], [False] * 6], -np.inf, 0.0).astype(np.float32)
    float_mask = data(4, 6, seed=4)
    out = ours(params, query, keys=memory, values=values, key_padding_mask=padding,
               attn_mask=float_mask)
    out_t, _ = theirs(to_torch(query), to_torch(memory), to_torch(values),
                      key_padding_mask=to_torch(padding),
                      attn_mask=to_torch(float_mask))
    close(out, out_t)


def test_multihead_attention_unbatched():
    ours, params, theirs = _mha_pair(batch_first=False)
    x = data(5, 8)
    out_t, _ = theirs(*[to_torch(x)] * 3)
    close(ours(params, x), out_t)
