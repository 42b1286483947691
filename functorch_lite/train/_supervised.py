"""A loss function built from a model and a loss on its outputs (``fl.train.supervised``)."""

from __future__ import annotations

import functorch_lite.numpy as fnp
from functorch_lite.train._step import Variables


def accuracy(logits, labels):
    """Fraction of rows whose largest logit is at the integer label.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.train.accuracy(fnp.array([[0.1, 2.0], [3.0, 0.0]]), fnp.array([1, 1]))
        Array(0.5, dtype=float32)
    """
    return fnp.mean((fnp.argmax(logits, axis=-1) == labels).astype(fnp.float32))


def supervised(model, loss, *, metrics=None):
    """A loss function ``loss_fn(variables, batch, key)`` for ``model`` on ``(x, y)`` batches.

    ``model`` follows the ``fl.nn`` protocol: ``model.init(key) -> (params, state)`` and
    ``model.apply(params, state, x, *, key=None, train=False) -> (out, state)``. The model
    state (BatchNorm running statistics...) is threaded through the step purely: train on
    ``fl.train.Variables(params, state)``; the loss function returns the updated state as
    ``aux["state"]`` and the step puts it back into the ``Variables`` it returns. Called on
    plain params (no state), the model gets ``state=None``.

    Args:
        model: an object with ``apply`` as above.
        loss: ``loss(out, y) -> scalar`` (``nn.cross_entropy``, ``nn.mse``...).
        metrics: optional dict ``name -> fn(out, y) -> scalar`` reported beside the loss
            (e.g. ``{"accuracy": fl.train.accuracy}``).

    Returns:
        ``loss_fn``; its ``loss_fn.evaluate(variables, batch, key=None)`` runs the model
        with ``train=False`` (used by ``fit`` for validation).

    Batches are ``(x, y)`` tuples/lists or dicts with keys ``"x"`` and ``"y"``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> class Scale:                      # any object with init/apply works
        ...     def init(self, key):
        ...         return {"a": fnp.ones(())}, {"calls": fnp.zeros(())}
        ...     def apply(self, params, state, x, *, key=None, train=False):
        ...         return params["a"] * x, {"calls": state["calls"] + train}
        >>> model = Scale()
        >>> loss_fn = fl.train.supervised(model, lambda out, y: fnp.mean((out - y) ** 2))
        >>> variables = fl.train.Variables(*model.init(fl.random.key(0)))
        >>> batch = (fnp.array([1.0, 2.0]), fnp.array([2.0, 4.0]))
        >>> loss, aux = loss_fn(variables, batch, fl.random.key(1))
        >>> float(loss), float(aux["state"]["calls"])
        (2.5, 1.0)
    """
    metrics = dict(metrics or {})

    def run(variables, batch, key, train):
        x, y = _split_batch(batch)
        if isinstance(variables, Variables):
            params, state = variables
        else:
            params, state = variables, None
        out, new_state = model.apply(params, state, x, key=key, train=train)
        aux = {name: fn(out, y) for name, fn in metrics.items()}
        if isinstance(variables, Variables):
            aux["state"] = new_state
        return loss(out, y), aux

    def loss_fn(variables, batch, key):
        return run(variables, batch, key, train=True)

    def evaluate(variables, batch, key=None):
        return run(variables, batch, key, train=False)

    loss_fn.evaluate = evaluate
    loss_fn.__name__ = f"supervised[{type(model).__name__}]"
    return loss_fn


def _split_batch(batch):
    if isinstance(batch, dict):
        try:
            return batch["x"], batch["y"]
        except KeyError:
            raise KeyError("fl.train.supervised: a dict batch needs the keys 'x' and 'y'; "
                           f"got {sorted(batch)}.") from None
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch
    raise TypeError("fl.train.supervised: a batch is (x, y) or {'x': ..., 'y': ...}; got "
                    f"a {type(batch).__name__}.")
