"""``fl.train``: a pure training step and a small epoch loop around it (Lightning stand-in).

``make_step(loss_fn, optimizer)`` is the whole training step as one pure, jitted function
``step(params, opt_state, batch, key) -> (params, opt_state, metrics)``. ``fit`` runs it
over a loader for some epochs with validation, a progress bar, a metric history and
callbacks (:class:`EarlyStopping`, :class:`ModelCheckpoint`, :class:`GradientHealth`).
A model with state (BatchNorm) trains on :class:`Variables` ``(params, state)``; the state
is returned by the loss function as ``aux["state"]``, so every function stays pure.

Example:
    >>> import numpy as np
    >>> import functorch_lite as fl
    >>> import functorch_lite.numpy as fnp
    >>> from functorch_lite import optim
    >>> x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
    >>> loader = fl.data.DataLoader(fl.data.ArrayDataset(x, 3 * x[:, 0]), batch_size=16)
    >>> def loss_fn(params, batch, key):
    ...     xb, yb = batch
    ...     return fnp.mean((xb[:, 0] * params["a"] - yb) ** 2)
    >>> params, _, history = fl.train.fit(loss_fn, {"a": fnp.zeros(())}, optim.sgd(0.5),
    ...                                   loader, epochs=20, progress=False)
    >>> round(float(params["a"]), 3), len(history["loss"])
    (3.0, 20)
"""

from functorch_lite.train._callbacks import (
    Callback,
    EarlyStopping,
    GradientHealth,
    GradientWarning,
    ModelCheckpoint,
)
from functorch_lite.train._fit import Loop, fit
from functorch_lite.train._step import Variables, global_norm, make_eval_step, make_step
from functorch_lite.train._supervised import accuracy, supervised

__all__ = ["make_step", "make_eval_step", "fit", "supervised", "accuracy", "global_norm",
           "Variables", "Loop", "Callback", "EarlyStopping", "ModelCheckpoint",
           "GradientHealth", "GradientWarning"]
