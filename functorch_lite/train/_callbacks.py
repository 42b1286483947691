"""Callbacks for ``fit``: early stopping, checkpointing, gradient-health warnings."""

from __future__ import annotations

import math
import os
import warnings

from functorch_lite import _io


class Callback:
    """Base class: override the hooks you need; each receives the running :class:`Loop`.

    ``loop`` has ``params``, ``opt_state``, ``epoch``, ``step`` (global step count),
    ``history`` (dict of per-epoch metric lists) and ``stop_training`` (set it to True to
    end after the current epoch).

    Example:
        >>> import functorch_lite as fl
        >>> class PrintLoss(fl.train.Callback):
        ...     def on_epoch_end(self, loop, logs):
        ...         print(f"epoch {loop.epoch}: loss {logs['loss']:.2f}")
    """

    def on_fit_start(self, loop):
        pass

    def on_step_end(self, loop, metrics):
        """After each step; ``metrics`` are Python floats."""

    def on_epoch_end(self, loop, logs):
        """After each epoch (and its validation); ``logs`` are the epoch's mean metrics."""

    def on_fit_end(self, loop):
        pass


class _Monitor:
    """Tracks the best value of one logged metric (``mode`` "min" or "max")."""

    def __init__(self, monitor, mode, min_delta, owner):
        if mode not in ("min", "max"):
            raise ValueError(f"fl.train.{owner}: mode must be 'min' or 'max', got {mode!r}.")
        self.monitor, self.mode, self.min_delta, self.owner = monitor, mode, min_delta, owner
        self.best = math.inf if mode == "min" else -math.inf

    def value(self, logs):
        if self.monitor not in logs:
            hint = " (pass val_loader to fit for val_* metrics)" if self.monitor.startswith(
                "val_") else ""
            raise KeyError(f"fl.train.{self.owner}: monitor={self.monitor!r} is not among "
                           f"the logged metrics {sorted(logs)}{hint}.")
        return logs[self.monitor]

    def improved(self, value):
        """True (and remember ``value``) when it beats the best so far by ``min_delta``."""
        better = (value < self.best - self.min_delta if self.mode == "min"
                  else value > self.best + self.min_delta)
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: a logged metric (``"val_loss"``, ``"loss"``, ``"val_accuracy"``...).
        patience: epochs without improvement before stopping.
        mode: ``"min"`` (lower is better) or ``"max"``.
        min_delta: the smallest change that counts as an improvement.
        restore_best: at the end, put back the parameters (and optimizer state) of the
            best epoch. Not available with ``fit(..., donate=True)``.

    ``stopped_epoch`` is the epoch (0-based) after which training stopped, else None.

    Example:
        >>> import functorch_lite as fl
        >>> stop = fl.train.EarlyStopping(monitor="val_loss", patience=2)
        >>> stop.patience, stop.stopped_epoch
        (2, None)
    """

    def __init__(self, monitor="val_loss", patience=3, mode="min", min_delta=0.0,
                 restore_best=False):
        self._monitor = _Monitor(monitor, mode, min_delta, "EarlyStopping")
        self.patience, self.restore_best = patience, restore_best
        self.stopped_epoch, self._wait, self._best_state = None, 0, None

    def on_fit_start(self, loop):
        if self.restore_best and loop.donate:
            raise ValueError("fl.train.EarlyStopping: restore_best=True needs the best "
                             "epoch's arrays, which fit(..., donate=True) overwrites; "
                             "use a ModelCheckpoint instead, or donate=False.")

    def on_epoch_end(self, loop, logs):
        if self._monitor.improved(self._monitor.value(logs)):
            self._wait = 0
            if self.restore_best:   # arrays are immutable: keeping references is enough
                self._best_state = (loop.params, loop.opt_state)
            return
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = loop.epoch
            loop.stop_training = True

    def on_fit_end(self, loop):
        if self.restore_best and self._best_state is not None:
            loop.params, loop.opt_state = self._best_state


class ModelCheckpoint(Callback):
    """Save ``{"params", "opt_state", "epoch"}`` with ``fl.save`` after epochs.

    Files: ``<directory>/last<suffix>`` after every epoch (``save_last``) and
    ``<directory>/best<suffix>`` whenever ``monitor`` improves (``save_best``). Reload with
    ``fl.load(path, like={"params": params, "opt_state": opt_state, "epoch": 0})``.

    Args:
        directory: where to write (created if missing).
        monitor, mode: the metric that defines "best" and whether lower or higher wins.
        save_best, save_last: which files to write.
        suffix: ``".npz"`` or ``".safetensors"``.

    ``best_path`` / ``last_path`` are the files written so far (None before).

    Example:
        >>> import tempfile
        >>> import functorch_lite as fl
        >>> ckpt = fl.train.ModelCheckpoint(tempfile.mkdtemp(), monitor="loss")
        >>> ckpt.best_path is None
        True
    """

    def __init__(self, directory, monitor="val_loss", mode="min", save_best=True,
                 save_last=True, suffix=".npz"):
        self.directory, self.save_best, self.save_last, self.suffix = (
            os.fspath(directory), save_best, save_last, suffix)
        self._monitor = _Monitor(monitor, mode, 0.0, "ModelCheckpoint")
        self.best_path = self.last_path = None

    def on_fit_start(self, loop):
        os.makedirs(self.directory, exist_ok=True)

    def on_epoch_end(self, loop, logs):
        tree = {"params": loop.params, "opt_state": loop.opt_state, "epoch": loop.epoch}
        if self.save_best and self._monitor.improved(self._monitor.value(logs)):
            self.best_path = os.path.join(self.directory, "best" + self.suffix)
            _io.save(self.best_path, tree)
        if self.save_last:
            self.last_path = os.path.join(self.directory, "last" + self.suffix)
            _io.save(self.last_path, tree)


class GradientWarning(RuntimeWarning):
    """Issued by :class:`GradientHealth`: non-finite, vanishing or exploding gradients."""


class GradientHealth(Callback):
    """Warn (once per kind) when the gradient is non-finite, vanishing or exploding.

    Checks each step's ``grad_norm`` and ``loss``. When one is unhealthy it recomputes the
    per-leaf gradient norms of that step (``fl.debug.grad_norms``) and names the leaves at
    fault: non-finite ones, or the smallest / largest. ``fit`` adds one by default
    (``fit(..., grad_health=False)`` turns it off).

    Args:
        vanishing: a global norm below this (and a non-zero loss) warns.
        exploding: a global norm above this warns.

    Example:
        >>> import functorch_lite as fl
        >>> health = fl.train.GradientHealth(vanishing=1e-10, exploding=1e6)
        >>> health.warned
        set()
    """

    def __init__(self, vanishing=1e-8, exploding=1e4):
        self.vanishing, self.exploding = vanishing, exploding
        self.warned = set()

    def on_step_end(self, loop, metrics):
        norm, loss = metrics["grad_norm"], metrics["loss"]
        if not (math.isfinite(norm) and math.isfinite(loss)):
            self._warn(loop, "non-finite", norm, loss)
        elif norm < self.vanishing and loss != 0.0:
            self._warn(loop, "vanishing", norm, loss)
        elif norm > self.exploding:
            self._warn(loop, "exploding", norm, loss)

    def _warn(self, loop, kind, norm, loss):
        if kind in self.warned:
            return
        self.warned.add(kind)
        where = f"epoch {loop.epoch}, step {loop.step}"
        message = (f"fl.train.fit: {kind} gradient at {where}: global grad norm {norm:.3g}, "
                   f"loss {loss:.4g}.")
        norms = loop.last_grad_norms()
        if norms:
            message += " " + _blame(kind, norms)
        message += {
            "non-finite": " Look for log(0), division by zero or overflow in the loss; "
                          "fl.debug.nans(True) names the first primitive producing a NaN.",
            "vanishing": " Check the initialization scale, saturating activations and the "
                         "learning rate.",
            "exploding": " Lower the learning rate or clip (optim.clip_by_global_norm).",
        }[kind]
        warnings.warn(message, GradientWarning, stacklevel=5)   # the caller of fit


def _blame(kind, norms):
    """Sentence naming the leaves responsible, from ``{key path: norm}``."""
    if kind == "non-finite":
        bad = [name for name, value in norms.items() if not math.isfinite(value)]
        return (f"Non-finite gradient in {', '.join(bad[:5])}." if bad
                else "Every gradient leaf is finite: the loss itself is not.")
    pick = min if kind == "vanishing" else max
    name = pick(norms, key=norms.get)
    return f"{'Smallest' if kind == 'vanishing' else 'Largest'} leaf: {name} ({norms[name]:.3g})."
