"""Single-layer recurrent layers (RNN, LSTM, GRU) as one ``fl.scan`` over time.

The input projection of every time step is one matmul before the loop; the scan body only
adds the hidden-state projection, so jit stages one loop node whose body is a few ops.
"""

import math

import functorch_lite.numpy as fnp
from functorch_lite import random
from functorch_lite.control_flow import scan
from functorch_lite.nn import initializers
from functorch_lite.nn._activations import relu, sigmoid
from functorch_lite.nn._layers import check_input
from functorch_lite.nn._module import Module

__all__ = ["RNN", "LSTM", "GRU"]


class _Recurrent(Module):
    stateless = True
    gates = 1

    def __init__(self, input_size, hidden_size, bias=True, batch_first=False):
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.batch_first = batch_first

    def init(self, key):
        # PyTorch draws every recurrent weight and bias from U(±1/sqrt(hidden_size)).
        bound = 1.0 / math.sqrt(self.hidden_size)
        draw = initializers.uniform(-bound, bound)
        rows = self.gates * self.hidden_size
        shapes = {"weight_ih": (rows, self.input_size), "weight_hh": (rows, self.hidden_size)}
        if self.bias:
            shapes.update(bias_ih=(rows,), bias_hh=(rows,))
        keys = random.split(key, len(shapes))
        return {name: draw(k, shape) for (name, shape), k in zip(shapes.items(), keys,
                                                                    strict=True)}, {}

    def _param_keys(self):
        names = ["weight_ih", "weight_hh"]
        return names + ["bias_ih", "bias_hh"] if self.bias else names

    def extra_repr(self):
        return (f"{self.input_size}, {self.hidden_size}, bias={self.bias}, "
                f"batch_first={self.batch_first}")

    def _time_major(self, x):
        """``(inputs as (L, N, H_in), unbatched?)`` after the layout and shape checks."""
        layout = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
        check_input(self, x, ndims=(2, 3), sizes={-1: self.input_size},
                    layout=f"{layout} or (L, H_in) with H_in={self.input_size}")
        unbatched = fnp.ndim(x) == 2
        if unbatched:
            x = fnp.expand_dims(x, 1)
        elif self.batch_first:
            x = fnp.swapaxes(x, 0, 1)
        return x, unbatched

    def _initial(self, h0, batch, dtype, what):
        if h0 is None:
            return fnp.zeros((batch, self.hidden_size), dtype)
        want = (batch, self.hidden_size)
        h0 = fnp.asarray(h0)
        if h0.shape not in (want, (self.hidden_size,) if batch == 1 else want):
            raise ValueError(f"nn.{self!r}: {what} must have shape {want}, got {h0.shape}")
        return fnp.broadcast_to(h0, want)

    def _run(self, params, x, carry, cell):
        x, unbatched = self._time_major(x)
        inputs = fnp.matmul(x, params["weight_ih"].T)
        if self.bias:
            inputs = inputs + params["bias_ih"]
        carry, outputs = scan(cell, carry, inputs)
        if unbatched:
            outputs = outputs[:, 0]
            carry = _first(carry)
        elif self.batch_first:
            outputs = fnp.swapaxes(outputs, 0, 1)
        return outputs, carry

    def _hidden_projection(self, params, h):
        projected = fnp.matmul(h, params["weight_hh"].T)
        return projected + params["bias_hh"] if self.bias else projected

    def _split(self, gates):
        size = self.hidden_size
        return [gates[..., i * size:(i + 1) * size] for i in range(self.gates)]

    def _batch(self, x):
        return 1 if fnp.ndim(x) == 2 else fnp.shape(x)[0 if self.batch_first else 1]


def _first(carry):
    if isinstance(carry, tuple):
        return tuple(c[0] for c in carry)
    return carry[0]


class RNN(_Recurrent):
    """Elman RNN, one layer: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``
    (``nonlinearity="relu"`` for relu), as ``torch.nn.RNN(num_layers=1)``.

    Input ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``) or unbatched ``(L,
    H_in)``; optional ``h0`` of shape ``(N, hidden_size)``. Returns ``(output, h_n)``:
    every step's hidden state and the last one (without PyTorch's leading layer axis).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> rnn = RNN(3, 5)
        >>> params, _ = rnn.init(fl.random.key(0))
        >>> out, h = rnn(params, fnp.ones((7, 2, 3)))
        >>> out.shape, h.shape
        ((7, 2, 5), (2, 5))
    """

    def __init__(self, input_size, hidden_size, nonlinearity="tanh", bias=True,
                 batch_first=False):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nn.RNN: nonlinearity must be 'tanh' or 'relu', got "
                             f"{nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, batch_first)
        self.nonlinearity = nonlinearity

    def forward(self, params, state, x, *, key, train, h0=None):
        activation = fnp.tanh if self.nonlinearity == "tanh" else relu

        def cell(h, x_t):
            h = activation(x_t + self._hidden_projection(params, h))
            return h, h

        h = self._initial(h0, self._batch(x), fnp.asarray(x).dtype, "h0")
        return self._run(params, x, h, cell)


class LSTM(_Recurrent):
    """Long short-term memory, one layer, gates in PyTorch's order (input, forget, cell,
    output): ``weight_ih`` (4*hidden, H_in), ``weight_hh`` (4*hidden, hidden).

    Input as ``RNN``; optional ``h0=(h, c)``. Returns ``(output, (h_n, c_n))``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> lstm = LSTM(3, 5, batch_first=True)
        >>> params, _ = lstm.init(fl.random.key(0))
        >>> out, (h, c) = lstm(params, fnp.ones((2, 7, 3)))
        >>> out.shape, c.shape
        ((2, 7, 5), (2, 5))
    """

    gates = 4

    def forward(self, params, state, x, *, key, train, h0=None):
        def cell(carry, x_t):
            h, c = carry
            i, f, g, o = self._split(x_t + self._hidden_projection(params, h))
            c = sigmoid(f) * c + sigmoid(i) * fnp.tanh(g)
            h = sigmoid(o) * fnp.tanh(c)
            return (h, c), h

        batch, dtype = self._batch(x), fnp.asarray(x).dtype
        h, c = (None, None) if h0 is None else h0
        carry = (self._initial(h, batch, dtype, "h0[0]"), self._initial(c, batch, dtype,
                                                                         "h0[1]"))
        return self._run(params, x, carry, cell)


class GRU(_Recurrent):
    """Gated recurrent unit, one layer, PyTorch's equations and gate order (reset, update,
    new): ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``.

    Input as ``RNN``; optional ``h0``. Returns ``(output, h_n)``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> gru = GRU(3, 5)
        >>> params, _ = gru.init(fl.random.key(0))
        >>> out, h = gru(params, fnp.ones((7, 3)))
        >>> out.shape, h.shape
        ((7, 5), (5,))
    """

    gates = 3

    def forward(self, params, state, x, *, key, train, h0=None):
        def cell(h, x_t):
            input_r, input_z, input_n = self._split(x_t)
            hidden_r, hidden_z, hidden_n = self._split(self._hidden_projection(params, h))
            r = sigmoid(input_r + hidden_r)
            z = sigmoid(input_z + hidden_z)
            n = fnp.tanh(input_n + r * hidden_n)
            h = (1.0 - z) * n + z * h
            return h, h

        h = self._initial(h0, self._batch(x), fnp.asarray(x).dtype, "h0")
        return self._run(params, x, h, cell)
