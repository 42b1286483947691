"""The optimizers: chains of the building blocks in ``_transforms``.

Conventions (one rule for all of them): the API and argument names are Optax's; the
formulas and default hyperparameters are PyTorch's ``torch.optim`` (so a script ported
from PyTorch takes the same steps). Where the two libraries agree (SGD, Adam, AdamW's
decoupled decay) both are matched. ``learning_rate`` is a float or a schedule everywhere.
PyTorch's coupled ``weight_decay=wd`` argument of SGD/Adam/RMSprop/Adagrad is
``chain(add_decayed_weights(wd), <optimizer>)``.
"""

from __future__ import annotations

from functorch_lite.optim._base import (
    GradientTransformation,
    chain,
    check_learning_rate,
    check_range,
    named,
)
from functorch_lite.optim._transforms import (
    add_decayed_weights,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_lion,
    scale_by_rms,
    trace,
)

__all__ = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "lion"]


def _momentum(fn_name: str, momentum, nesterov: bool) -> float:
    momentum = 0.0 if momentum is None else momentum
    check_range(fn_name, "momentum", momentum, 0.0, 1.0)
    if nesterov and momentum == 0:
        raise ValueError(f"{fn_name}: nesterov=True needs a momentum > 0 (got momentum="
                         f"{momentum!r}); pass e.g. momentum=0.9")
    return momentum


def _check_adam_hypers(fn_name: str, learning_rate, b1, b2, eps, eps_root) -> None:
    check_learning_rate(fn_name, learning_rate)
    check_range(fn_name, "b1", b1, 0.0, 1.0)
    check_range(fn_name, "b2", b2, 0.0, 1.0)
    check_range(fn_name, "eps", eps, 0.0)
    check_range(fn_name, "eps_root", eps_root, 0.0)


def sgd(learning_rate, momentum: float = 0.0, nesterov: bool = False) -> GradientTransformation:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    ``buf = momentum * buf + g``; the update is ``-lr * buf`` (``-lr * (g + momentum *
    buf)`` with ``nesterov``). This is ``torch.optim.SGD(lr, momentum, nesterov=...,
    dampening=0)``; the state is ``(TraceState, lr state)`` when momentum > 0.

    Args:
        learning_rate: a non-negative float or a schedule ``step -> lr``.
        momentum: in ``[0, 1)``; 0 (or None) for plain SGD.
        nesterov: use Nesterov momentum (needs ``momentum > 0``).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> loss = lambda w: fnp.sum((w - 3.0) ** 2)
        >>> opt = optim.sgd(0.1, momentum=0.9)
        >>> w = fnp.zeros(2)
        >>> state = opt.init(w)
        >>> for _ in range(100):
        ...     updates, state = opt.update(fl.grad(loss)(w), state, w)
        ...     w = optim.apply_updates(w, updates)
        >>> w
        Array([3., 3.], dtype=float32)
    """
    check_learning_rate("sgd", learning_rate)
    momentum = _momentum("sgd", momentum, nesterov)
    lr = scale_by_learning_rate(learning_rate)
    if momentum == 0:
        return named("sgd", lr)
    return named("sgd", chain(trace(momentum, nesterov), lr))


def adam(learning_rate, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         eps_root: float = 0.0) -> GradientTransformation:
    """Adam (Kingma & Ba): ``-lr * m_hat / (sqrt(v_hat + eps_root) + eps)``.

    See :func:`scale_by_adam` for the moments and bias corrections; this is
    ``torch.optim.Adam(lr, betas=(b1, b2), eps=eps)`` (and ``optax.adam``).

    Args:
        learning_rate: a non-negative float or a schedule.
        b1, b2: decay rates of the first and second moments, in ``[0, 1)``.
        eps: added to the denominator, outside the square root.
        eps_root: added inside the square root (0 in PyTorch; > 0 keeps the gradient of
            the update finite when differentiating through it, e.g. in meta-learning).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> params = {"w": fnp.ones(3)}
        >>> opt = optim.adam(1e-2)
        >>> state = opt.init(params)
        >>> updates, state = opt.update({"w": fnp.array([1.0, -1.0, 0.0])}, state, params)
        >>> updates["w"]                          # first step: -lr * sign(g)
        Array([-0.01,  0.01,  0.  ], dtype=float32)
    """
    _check_adam_hypers("adam", learning_rate, b1, b2, eps, eps_root)
    return named("adam", chain(scale_by_adam(b1, b2, eps, eps_root),
                               scale_by_learning_rate(learning_rate)))


def adamw(learning_rate, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, weight_decay: float = 1e-2,
          mask=None) -> GradientTransformation:
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``-lr * (adam_dir + wd * p)``.

    The decay is scaled by the learning rate (and follows its schedule), as in
    ``torch.optim.AdamW`` (whose ``p *= 1 - lr * wd`` is the same step) and
    ``optax.adamw``. The default ``weight_decay=1e-2`` is PyTorch's (Optax's is 1e-4).
    The decay uses the parameters before the step.

    Args:
        learning_rate: a non-negative float or a schedule.
        b1, b2, eps, eps_root: as in :func:`adam`.
        weight_decay: non-negative.
        mask: which leaves are decayed — a pytree of Python bools like the params (or a
            prefix), or a callable ``params -> mask``. **True = decayed**; False leaves
            get the plain Adam step (no decay). The mask affects the decay only, never the
            Adam step. Common: ``lambda p: tree.map(lambda x: x.ndim > 1, p)`` (no decay
            on biases and norm scales). None decays every leaf.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> params = {"w": fnp.ones(2), "b": fnp.ones(2)}
        >>> opt = optim.adamw(0.1, weight_decay=0.5, mask={"w": True, "b": False})
        >>> zero = {"w": fnp.zeros(2), "b": fnp.zeros(2)}
        >>> updates, _ = opt.update(zero, opt.init(params), params)
        >>> updates                               # decay only: -0.1 * 0.5 * w
        {'b': Array([0., 0.], dtype=float32), 'w': Array([-0.05, -0.05], dtype=float32)}
    """
    _check_adam_hypers("adamw", learning_rate, b1, b2, eps, eps_root)
    check_range("adamw", "weight_decay", weight_decay, 0.0)
    return named("adamw", chain(scale_by_adam(b1, b2, eps, eps_root),
                                add_decayed_weights(weight_decay, mask),
                                scale_by_learning_rate(learning_rate)))


def rmsprop(learning_rate, decay: float = 0.99, eps: float = 1e-8, centered: bool = False,
            momentum: float = 0.0, nesterov: bool = False) -> GradientTransformation:
    """RMSprop, PyTorch's formula: ``-lr * g / (sqrt(nu) + eps)``.

    ``nu = decay * nu + (1 - decay) * g^2``; ``centered`` subtracts the squared running mean
    of ``g`` under the root; ``momentum`` accumulates ``g / (sqrt(nu) + eps)`` in a buffer
    before the learning rate. This is ``torch.optim.RMSprop(lr, alpha=decay, eps,
    centered, momentum)``. NB: ``optax.rmsprop`` defaults differ (``decay=0.9``, eps inside
    the square root); pass ``decay=0.9`` to get Optax's decay.

    Args:
        learning_rate: a non-negative float or a schedule.
        decay: the squared-gradient average's decay (PyTorch's ``alpha``), in ``[0, 1)``.
        eps: added after the square root.
        centered: normalise by the estimated variance instead of the second moment.
        momentum: in ``[0, 1)``; 0 for none.
        nesterov: Nesterov momentum (not in PyTorch's RMSprop; needs ``momentum > 0``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> opt = optim.rmsprop(0.01, decay=0.75)
        >>> w = fnp.zeros(2)
        >>> opt.update(fnp.array([2.0, -2.0]), opt.init(w), w)[0]  # -lr * g / sqrt(.25 g^2)
        Array([-0.02,  0.02], dtype=float32)
    """
    check_learning_rate("rmsprop", learning_rate)
    check_range("rmsprop", "decay", decay, 0.0, 1.0)
    check_range("rmsprop", "eps", eps, 0.0)
    momentum = _momentum("rmsprop", momentum, nesterov)
    parts = [scale_by_rms(decay, eps, centered)]
    if momentum:
        parts.append(trace(momentum, nesterov))
    return named("rmsprop", chain(*parts, scale_by_learning_rate(learning_rate)))


def adagrad(learning_rate, initial_accumulator_value: float = 0.0,
            eps: float = 1e-10) -> GradientTransformation:
    """Adagrad, PyTorch's formula: ``-lr * g / (sqrt(sum of g^2 so far) + eps)``.

    This is ``torch.optim.Adagrad(lr, initial_accumulator_value, eps)`` (PyTorch's
    ``lr_decay=d`` is the schedule ``lambda t: lr / (1 + t * d)``). NB: ``optax.adagrad``
    puts eps inside the root and starts the sum at 0.1.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> opt = optim.adagrad(0.5)
        >>> w = fnp.zeros(2)
        >>> opt.update(fnp.array([3.0, -4.0]), opt.init(w), w)[0]
        Array([-0.5,  0.5], dtype=float32)
    """
    check_learning_rate("adagrad", learning_rate)
    check_range("adagrad", "initial_accumulator_value", initial_accumulator_value, 0.0)
    check_range("adagrad", "eps", eps, 0.0)
    return named("adagrad", chain(scale_by_adagrad(initial_accumulator_value, eps),
                                  scale_by_learning_rate(learning_rate)))


def lion(learning_rate, b1: float = 0.9, b2: float = 0.99, weight_decay: float = 1e-3,
         mask=None) -> GradientTransformation:
    """Lion (Chen et al. 2023): ``-lr * (sign(b1 m + (1 - b1) g) + wd * p)``.

    ``m = b2 m + (1 - b2) g`` after the step. Decoupled weight decay as in :func:`adamw`
    (same ``mask`` polarity: True = decayed). Defaults are the paper's and Optax's (PyTorch
    has no Lion). Use a learning rate 3-10x smaller than Adam's.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> opt = optim.lion(0.1, weight_decay=0.0)
        >>> w = fnp.zeros(3)
        >>> opt.update(fnp.array([0.2, -5.0, 0.0]), opt.init(w), w)[0]
        Array([-0.1,  0.1,  0. ], dtype=float32)
    """
    check_learning_rate("lion", learning_rate)
    check_range("lion", "b1", b1, 0.0, 1.0)
    check_range("lion", "b2", b2, 0.0, 1.0)
    check_range("lion", "weight_decay", weight_decay, 0.0)
    parts = [scale_by_lion(b1, b2)]
    if weight_decay:
        parts.append(add_decayed_weights(weight_decay, mask))
    return named("lion", chain(*parts, scale_by_learning_rate(learning_rate)))
