"""``fit``: the epoch loop around a jitted step (progress, history, validation, callbacks)."""

from __future__ import annotations

from functorch_lite import debug, random
from functorch_lite import tree as tree_util
from functorch_lite.autodiff import grad
from functorch_lite.jit import jit
from functorch_lite.train._callbacks import GradientHealth
from functorch_lite.train._progress import make_progress
from functorch_lite.train._step import Variables, _objective, make_eval_step, make_step
from functorch_lite.train._supervised import supervised


class Loop:
    """The running state of a :func:`fit` call, handed to every callback hook."""

    def __init__(self, params, opt_state, loss_fn, donate):
        self.params, self.opt_state, self.donate = params, opt_state, donate
        self.epoch, self.step, self.history, self.stop_training = 0, 0, {}, False
        self._last_inputs = None    # (params before the step, batch, key)
        # Only traced when a GradientHealth warning needs the per-leaf norms.
        self._grad_fn = jit(grad(_objective_loss(loss_fn)))

    def last_grad_norms(self):
        """``{key path: norm}`` of the latest step's gradient (recomputed), or None when
        the step donated its inputs (they no longer exist)."""
        if self._last_inputs is None or self.donate:
            return None
        params, batch, key = self._last_inputs
        grads = self._grad_fn(*_split_variables(params), batch, key)
        norms = debug.grad_norms(grads)
        return {tree_util.keystr(path): value
                for path, value in tree_util.leaves_with_path(norms)}


def fit(model_or_loss_fn, params, optimizer, train_loader, val_loader=None, *, epochs=1,
        loss=None, metrics=None, state=None, opt_state=None, callbacks=(), key=None,
        progress=True, grad_health=True, donate=False, start_epoch=0):
    """Train for ``epochs`` epochs; return ``(params, opt_state, history)``.

    Each epoch runs a jitted :func:`make_step` over ``train_loader.epoch(epoch)`` (or the
    iterable itself), averages the step metrics (weighted by batch size), evaluates on
    ``val_loader`` (metrics prefixed ``val_``), appends everything to ``history`` and calls
    the callbacks. A progress bar (tqdm when installed, else one printed line per epoch)
    shows it; ``progress=False`` is silent.

    Args:
        model_or_loss_fn: a loss function ``loss_fn(params, batch, key) -> loss`` or
            ``(loss, aux)`` (see :func:`make_step`), or a model with ``apply`` (``fl.nn``
            protocol) together with ``loss=``: then ``supervised(model, loss,
            metrics=metrics)`` is the loss function and batches are ``(x, y)``.
        params: the parameter pytree (or a :class:`Variables`).
        optimizer: an ``fl.optim`` gradient transformation.
        train_loader: an ``fl.data.DataLoader`` or any iterable of batches.
        val_loader: optional loader evaluated after every epoch (``loss_fn.evaluate``
            when it exists, so models run with ``train=False``).
        epochs: the number of epochs (counted from ``start_epoch``).
        loss, metrics: with a model: ``loss(out, y)`` and ``{name: fn(out, y)}``.
        state: the model state (``model.init``'s second result; required with a model
            unless ``params`` is a ``Variables``); training then runs on
            ``Variables(params, state)`` and the first result is that ``Variables``.
        opt_state: resume from this optimizer state (default ``optimizer.init(params)``).
        callbacks: :class:`Callback` s (:class:`EarlyStopping`, :class:`ModelCheckpoint`...).
        key: PRNG key; step ``i`` gets ``fold_in(key, i)`` (dropout...). Default key(0).
        progress: show progress (True) or not (False).
        grad_health: add a :class:`GradientHealth` callback (unless one is given).
        donate: donate params/opt_state to the step (fewer allocations; the arrays you
            pass in are invalidated).
        start_epoch: the first epoch number, for resuming: the loader's shuffle order
            follows it, and the step count (hence the step keys) starts at
            ``start_epoch * len(train_loader)`` when the loader has a length.

    Returns:
        ``(params, opt_state, history)``; ``params`` is a ``Variables`` when ``state`` is
        given; ``history`` maps each metric (``loss``, ``grad_norm``, ``val_loss``...) to
        its per-epoch values (Python floats).

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> x = np.random.default_rng(0).normal(size=(256, 3)).astype(np.float32)
        >>> y = x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3
        >>> loader = fl.data.DataLoader(fl.data.ArrayDataset(x, y), 64, shuffle=True)
        >>> def loss_fn(params, batch, key):
        ...     xb, yb = batch
        ...     return fnp.mean((xb @ params["w"] + params["b"] - yb) ** 2)
        >>> params = {"w": fnp.zeros(3), "b": fnp.zeros(())}
        >>> params, opt_state, history = fl.train.fit(
        ...     loss_fn, params, optim.adam(0.1), loader, loader, epochs=30, progress=False)
        >>> sorted(history), history["val_loss"][-1] < 1e-3
        (['grad_norm', 'loss', 'val_loss'], True)
    """
    loss_fn = _loss_function(model_or_loss_fn, loss, metrics)
    if loss_fn is not model_or_loss_fn and state is None and not isinstance(params, Variables):
        raise TypeError("fl.train.fit: a model trains on its params and its state: "
                        "params, state = model.init(key); fit(model, params, optimizer, "
                        "loader, loss=..., state=state).")
    if state is not None and not isinstance(params, Variables):
        params = Variables(params, state)
    if opt_state is None:
        opt_state = optimizer.init(_split_variables(params)[0])
    callbacks = list(callbacks)
    if grad_health and not any(isinstance(c, GradientHealth) for c in callbacks):
        callbacks.append(GradientHealth())
    key = random.key(0) if key is None else key
    train_key, val_key = random.split(key)

    step_fn = make_step(loss_fn, optimizer, donate=donate)
    eval_fn = make_eval_step(loss_fn) if val_loader is not None else None
    loop = Loop(params, opt_state, loss_fn, donate)
    loop.step = start_epoch * (_length(train_loader) or 0)   # a resumed run's step keys
    display = make_progress(progress, start_epoch + epochs)

    for c in callbacks:
        c.on_fit_start(loop)
    try:
        for epoch in range(start_epoch, start_epoch + epochs):
            loop.epoch = epoch
            display.start_epoch(epoch, _length(train_loader))
            logs = _train_epoch(loop, step_fn, train_loader, train_key, callbacks, display)
            if eval_fn is not None:
                logs.update(_validate(eval_fn, loop.params, val_loader, epoch, val_key))
            for name, value in logs.items():
                loop.history.setdefault(name, []).append(value)
            for c in callbacks:
                c.on_epoch_end(loop, logs)
            display.end_epoch(epoch, logs)
            if loop.stop_training:
                break
    finally:
        display.close()
    for c in callbacks:
        c.on_fit_end(loop)
    return loop.params, loop.opt_state, loop.history


def _train_epoch(loop, step_fn, loader, key, callbacks, display):
    mean = _WeightedMean()
    for batch in _batches(loader, loop.epoch):
        step_key = random.fold_in(key, loop.step)
        loop._last_inputs = (loop.params, batch, step_key)
        loop.params, loop.opt_state, metrics = step_fn(loop.params, loop.opt_state, batch,
                                                       step_key)
        metrics = {name: float(value) for name, value in metrics.items()}
        loop.step += 1
        mean.add(metrics, _batch_size(batch))
        for c in callbacks:
            c.on_step_end(loop, metrics)
        display.update(metrics)
    loop._last_inputs = None   # release the batch
    if mean.count == 0:
        raise ValueError(f"fl.train.fit: the train loader yielded no batches in epoch "
                         f"{loop.epoch}.")
    return mean.result()


def _validate(eval_fn, params, loader, epoch, key):
    mean = _WeightedMean()
    for batch in _batches(loader, epoch):
        mean.add(eval_fn(params, batch, key), _batch_size(batch))
    return {f"val_{name}": value for name, value in mean.result().items()}


class _WeightedMean:
    """Per-example means of per-batch mean metrics (a short last batch counts less)."""

    def __init__(self):
        self.totals, self.count = {}, 0

    def add(self, metrics, n):
        for name, value in metrics.items():
            self.totals[name] = self.totals.get(name, 0.0) + float(value) * n
        self.count += n

    def result(self):
        return {name: total / self.count for name, total in self.totals.items()}


def _batches(loader, epoch):
    return loader.epoch(epoch) if hasattr(loader, "epoch") else iter(loader)


def _length(loader):
    try:
        return len(loader)
    except TypeError:
        return None


def _batch_size(batch):
    leaves = tree_util.leaves(batch)
    shape = getattr(leaves[0], "shape", ()) if leaves else ()
    return shape[0] if shape else 1


def _loss_function(model_or_loss_fn, loss, metrics):
    if hasattr(model_or_loss_fn, "apply") and hasattr(model_or_loss_fn, "init"):
        if loss is None:
            raise TypeError("fl.train.fit: training a model needs loss=fn(out, y) "
                            "(e.g. nn.cross_entropy); or pass a loss function "
                            "loss_fn(params, batch, key) instead of the model.")
        return supervised(model_or_loss_fn, loss, metrics=metrics)
    if loss is not None or metrics is not None:
        raise TypeError("fl.train.fit: loss= and metrics= go with a model; a loss function "
                        "reports extra metrics in its aux dict.")
    return model_or_loss_fn


def _objective_loss(loss_fn):
    """``f(params, state, batch, key) -> loss``, for recomputing a step's gradient."""
    objective = _objective(loss_fn)
    return lambda params, state, batch, key: objective(params, state, batch, key)[0]


def _split_variables(params):
    return (params.params, params.state) if isinstance(params, Variables) else (params, None)

