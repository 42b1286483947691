"""Loss functions ``loss(prediction, target) -> scalar`` (mean over examples by default).

``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"``, as in
``torch.nn.functional``. The class axis of logits is the LAST axis (JAX convention; PyTorch
puts it at axis 1, which is the same for ``(batch, classes)`` inputs).
"""

import functorch_lite.numpy as fnp
from functorch_lite.nn._activations import log_softmax

__all__ = ["cross_entropy", "nll", "binary_cross_entropy", "mse", "l1", "huber"]


def _reduce(fn_name, losses, reduction):
    if reduction == "mean":
        return fnp.mean(losses)
    if reduction == "sum":
        return fnp.sum(losses)
    if reduction == "none":
        return losses
    raise ValueError(f"nn.{fn_name}: reduction must be 'mean', 'sum' or 'none', got "
                     f"{reduction!r}")


def _is_integer(x):
    return fnp.issubdtype(fnp.asarray(x).dtype, fnp.integer)


def _check_labels(fn_name, scores, labels):
    if fnp.shape(labels) != fnp.shape(scores)[:-1]:
        raise ValueError(f"nn.{fn_name}: integer labels must have the logits' shape without "
                         f"the class axis, {fnp.shape(scores)[:-1]}; got labels of shape "
                         f"{fnp.shape(labels)} for logits of shape {fnp.shape(scores)}")


def _pick(log_probs, labels):
    """``log_probs[..., labels]`` for integer labels (one class per example)."""
    return fnp.take_along_axis(log_probs, fnp.expand_dims(labels, -1), axis=-1)[..., 0]


def cross_entropy(logits, labels, *, label_smoothing=0.0, reduction="mean"):
    """Softmax cross-entropy from unnormalized ``logits`` (classes on the last axis).

    ``labels`` are integer class indices (shape ``logits.shape[:-1]``) or class
    probabilities (shape ``logits.shape``). ``label_smoothing=eps`` mixes the target with
    the uniform distribution: ``(1 - eps) * target + eps / num_classes`` (PyTorch's rule).
    Computed through a stable log-softmax, so large logits do not overflow.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> cross_entropy(fnp.array([[0.0, 0.0]]), fnp.array([1]))
        Array(0.6931472, dtype=float32)
    """
    logits = fnp.asarray(logits)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"nn.cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    log_probs = log_softmax(logits, axis=-1)
    if _is_integer(labels):
        _check_labels("cross_entropy", logits, labels)
        losses = -_pick(log_probs, labels)
        if label_smoothing:
            uniform = -fnp.mean(log_probs, axis=-1)
            losses = (1.0 - label_smoothing) * losses + label_smoothing * uniform
    else:
        if fnp.shape(labels) != logits.shape:
            raise ValueError(f"nn.cross_entropy: probability targets must have the logits' "
                             f"shape {logits.shape}, got {fnp.shape(labels)}")
        if label_smoothing:
            labels = (1.0 - label_smoothing) * labels + label_smoothing / logits.shape[-1]
        losses = -fnp.sum(labels * log_probs, axis=-1)
    return _reduce("cross_entropy", losses, reduction)


def nll(log_probs, labels, *, reduction="mean"):
    """Negative log-likelihood of integer ``labels`` under ``log_probs`` (classes last):
    PyTorch's ``nll_loss``; ``nll(log_softmax(z), y) == cross_entropy(z, y)``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> nll(fnp.log(fnp.array([[0.25, 0.75]])), fnp.array([1]))
        Array(0.2876821, dtype=float32)
    """
    log_probs = fnp.asarray(log_probs)
    _check_labels("nll", log_probs, labels)
    return _reduce("nll", -_pick(log_probs, labels), reduction)


def binary_cross_entropy(predictions, targets, *, from_logits=False, reduction="mean"):
    """Binary cross-entropy of ``targets`` in [0, 1].

    With ``from_logits=True`` the predictions are logits and the loss is computed stably as
    ``max(z, 0) - z * t + log1p(exp(-|z|))`` (PyTorch's ``binary_cross_entropy_with_logits``);
    otherwise they are probabilities and each log is clamped at -100, as PyTorch does.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> binary_cross_entropy(fnp.array([0.0]), fnp.array([1.0]), from_logits=True)
        Array(0.6931472, dtype=float32)
    """
    predictions = fnp.asarray(predictions)
    if fnp.shape(targets) != predictions.shape:
        raise ValueError(f"nn.binary_cross_entropy: targets must have the predictions' shape "
                         f"{predictions.shape}, got {fnp.shape(targets)}")
    if from_logits:
        z = predictions
        losses = fnp.maximum(z, 0.0) - z * targets + fnp.log1p(fnp.exp(-fnp.abs(z)))
    else:
        log_p = fnp.maximum(fnp.log(predictions), -100.0)
        log_not_p = fnp.maximum(fnp.log1p(-predictions), -100.0)
        losses = -(targets * log_p + (1.0 - targets) * log_not_p)
    return _reduce("binary_cross_entropy", losses, reduction)


def mse(predictions, targets, *, reduction="mean"):
    """Mean squared error (PyTorch's ``mse_loss``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> mse(fnp.array([1.0, 3.0]), fnp.array([0.0, 0.0]))
        Array(5., dtype=float32)
    """
    return _reduce("mse", fnp.square(fnp.asarray(predictions) - targets), reduction)


def l1(predictions, targets, *, reduction="mean"):
    """Mean absolute error (PyTorch's ``l1_loss``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> l1(fnp.array([1.0, -3.0]), fnp.array([0.0, 0.0]))
        Array(2., dtype=float32)
    """
    return _reduce("l1", fnp.abs(fnp.asarray(predictions) - targets), reduction)


def huber(predictions, targets, *, delta=1.0, reduction="mean"):
    """Huber loss (PyTorch's ``huber_loss``): ``0.5 * d**2`` where ``|d| <= delta``, else
    ``delta * (|d| - 0.5 * delta)``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> huber(fnp.array([0.5, 3.0]), fnp.array([0.0, 0.0]))
        Array(1.3125, dtype=float32)
    """
    error = fnp.abs(fnp.asarray(predictions) - targets)
    # The quadratic part is clamped at delta, so both branches stay finite and smooth.
    quadratic = fnp.minimum(error, delta)
    return _reduce("huber", 0.5 * quadratic * quadratic + delta * (error - quadratic),
                   reduction)
