"""Multi-head scaled dot-product attention, PyTorch's ``nn.MultiHeadAttention``."""

import math

import functorch_lite.numpy as fnp
from functorch_lite import random
from functorch_lite.nn import initializers
from functorch_lite.nn._activations import softmax
from functorch_lite.nn._layers import Dropout, check_input, default_kernel_init
from functorch_lite.nn._module import Module

__all__ = ["MultiHeadAttention"]


def _mask_scores(scores, mask, what):
    """Apply a PyTorch-style mask: bool True = may NOT attend (-inf), float = added."""
    mask = fnp.asarray(mask)
    if mask.dtype == fnp.bool_:
        return fnp.where(mask, -fnp.inf, scores)
    if not fnp.issubdtype(mask.dtype, fnp.floating):
        raise TypeError(f"nn.MultiHeadAttention: {what} must be bool or float, got "
                        f"{mask.dtype}")
    return scores + mask


class MultiHeadAttention(Module):
    """Multi-head attention with PyTorch's parameters, layout and masks.

    ``apply(params, state, query, keys=None, values=None, attn_mask=None,
    key_padding_mask=None, need_weights=False)``: ``query`` is ``(L, N, E)`` (``(N, L, E)``
    with ``batch_first``) or unbatched ``(L, E)``; ``keys``/``values`` default to the query
    (self-attention) and to the keys. ``attn_mask`` is ``(L, S)`` or ``(N * num_heads, L,
    S)``; ``key_padding_mask`` is ``(N, S)``; a bool mask marks positions that may NOT be
    attended (True -> -inf), a float mask is added to the scores, as in PyTorch. Returns the
    output, or ``(output, weights averaged over heads)`` with ``need_weights=True``.
    Dropout on the attention weights applies with ``train=True`` and a key.

    Params: ``in_proj_weight`` (3E, E, Xavier uniform), ``in_proj_bias`` (3E, zeros),
    ``out_proj_weight`` (E, E, Linear's default), ``out_proj_bias`` (E, zeros) — PyTorch's
    ``out_proj.weight``/``out_proj.bias`` with the dot replaced by an underscore.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> mha = MultiHeadAttention(8, num_heads=2, batch_first=True)
        >>> params, _ = mha.init(fl.random.key(0))
        >>> causal = fnp.triu(fnp.ones((5, 5), dtype=bool), k=1)
        >>> mha(params, fnp.ones((3, 5, 8)), attn_mask=causal).shape
        (3, 5, 8)
    """

    stateless = True

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False):
        if embed_dim % num_heads:
            raise ValueError(f"nn.MultiHeadAttention: embed_dim {embed_dim} must be divisible "
                             f"by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.bias = bias
        self.batch_first = batch_first

    def init(self, key):
        k_in, k_out = random.split(key)
        e = self.embed_dim
        params = {"in_proj_weight": initializers.xavier_uniform(k_in, (3 * e, e)),
                  "out_proj_weight": default_kernel_init(k_out, (e, e))}
        if self.bias:
            params["in_proj_bias"] = fnp.zeros((3 * e,))
            params["out_proj_bias"] = fnp.zeros((e,))
        return params, {}

    def _param_keys(self):
        names = ["in_proj_weight", "out_proj_weight"]
        return names + ["in_proj_bias", "out_proj_bias"] if self.bias else names

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, bias={self.bias}, batch_first={self.batch_first}")

    def _batch_major(self, x, what, unbatched):
        layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
        check_input(self, x, ndims=(2,) if unbatched else (3,), sizes={-1: self.embed_dim},
                    layout=f"{layout} or (L, E) with E={self.embed_dim} (for {what}, same "
                           f"rank as the query)")
        if unbatched:
            return fnp.expand_dims(x, 0)
        return x if self.batch_first else fnp.swapaxes(x, 0, 1)

    def _project(self, params, x, index):
        """``x`` (N, T, E) through the ``index``-th block of the input projection, split into
        heads: (N, heads, T, head_dim)."""
        e = self.embed_dim
        y = fnp.matmul(x, params["in_proj_weight"][index * e:(index + 1) * e].T)
        if self.bias:
            y = y + params["in_proj_bias"][index * e:(index + 1) * e]
        n, t = fnp.shape(x)[:2]
        return fnp.swapaxes(fnp.reshape(y, (n, t, self.num_heads, e // self.num_heads)), 1, 2)

    def forward(self, params, state, query, *, key, train, keys=None, values=None,
                attn_mask=None, key_padding_mask=None, need_weights=False):
        keys = query if keys is None else keys
        values = keys if values is None else values
        unbatched = fnp.ndim(query) == 2
        q = self._project(params, self._batch_major(query, "query", unbatched), 0)
        k = self._project(params, self._batch_major(keys, "keys", unbatched), 1)
        v = self._project(params, self._batch_major(values, "values", unbatched), 2)
        n, heads, target, head_dim = fnp.shape(q)
        source = fnp.shape(k)[2]
        scores = fnp.matmul(q, fnp.swapaxes(k, -1, -2)) * (1.0 / math.sqrt(head_dim))
        if attn_mask is not None:
            if fnp.ndim(attn_mask) == 3:
                attn_mask = fnp.reshape(attn_mask, (n, heads, target, source))
            scores = _mask_scores(scores, attn_mask, "attn_mask")
        if key_padding_mask is not None:
            padding = fnp.reshape(key_padding_mask, (n, 1, 1, source))
            scores = _mask_scores(scores, padding, "key_padding_mask")
        weights = softmax(scores, axis=-1)
        attended = weights
        if self.dropout:
            attended = Dropout(self.dropout).forward({}, {}, weights, key=key, train=train)
        out = fnp.reshape(fnp.swapaxes(fnp.matmul(attended, v), 1, 2),
                          (n, target, self.embed_dim))
        out = fnp.matmul(out, params["out_proj_weight"].T)
        if self.bias:
            out = out + params["out_proj_bias"]
        if unbatched:
            out, weights = out[0], weights[0]
        elif not self.batch_first:
            out = fnp.swapaxes(out, 0, 1)
        if need_weights:
            return out, fnp.mean(weights, axis=-3)
        return out
