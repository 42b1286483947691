"""The training step: one pure, jitted function of (params, opt_state, batch, key)."""

from __future__ import annotations

from typing import Any, NamedTuple

import functorch_lite.numpy as fnp
from functorch_lite import optim
from functorch_lite import tree as tree_util
from functorch_lite.autodiff import value_and_grad
from functorch_lite.jit import jit

_RESERVED = ("loss", "grad_norm")


class Variables(NamedTuple):
    """A model's trainable ``params`` and its non-trainable ``state`` (BatchNorm statistics).

    Pass one as the ``params`` of a step made by :func:`make_step`: the gradient is taken
    with respect to ``params`` only (the optimizer state is ``opt.init(variables.params)``),
    and the state a loss function reports as ``aux["state"]`` replaces ``state`` in the
    returned ``Variables``. It is a NamedTuple, hence a pytree: it unpacks as
    ``params, state = variables`` and saves with ``fl.save``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> v = fl.train.Variables({"w": fnp.ones(2)}, {"count": 0})
        >>> params, state = v
        >>> state
        {'count': 0}
    """

    params: Any
    state: Any


def split_loss(out, caller="make_step"):
    """``(loss, aux)`` from a loss function's result: ``loss`` or ``(loss, aux_dict)``."""
    if isinstance(out, tuple):
        if len(out) != 2 or not isinstance(out[1], dict):
            raise TypeError(
                f"fl.train.{caller}: the loss function returned a tuple of "
                f"{len(out)} values; return the scalar loss, or (loss, aux) with aux a dict "
                "of scalar metrics (and, for stateful models, aux['state']).")
        loss, aux = out
    else:
        loss, aux = out, {}
    clash = [name for name in _RESERVED if name in aux]
    if clash:
        raise ValueError(f"fl.train.{caller}: the aux dict may not use the names {clash}: "
                         "the step reports them itself; rename the metric.")
    return loss, aux


def global_norm(grads):
    """The L2 norm of all leaves of ``grads`` together, as a scalar array.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> float(fl.train.global_norm({"a": fnp.array([3.0]), "b": fnp.array([4.0])}))
        5.0
    """
    leaves = tree_util.leaves(grads)
    if not leaves:
        return fnp.zeros(())
    return fnp.sqrt(sum(fnp.sum(fnp.square(g)) for g in leaves))


def make_step(loss_fn, optimizer, *, donate=False, jit_compile=True):
    """A pure, jitted training step ``step(params, opt_state, batch, key)``.

    The step computes the loss and its gradient with respect to ``params``, applies
    ``optimizer`` and returns ``(params, opt_state, metrics)``. ``metrics`` is a dict of
    scalar arrays: ``loss``, ``grad_norm`` (global L2 norm of the gradient, before the
    optimizer) and every entry of the loss function's aux dict.

    Args:
        loss_fn: ``loss_fn(params, batch, key) -> loss`` or ``-> (loss, aux)`` with
            ``aux`` a dict of scalar metrics (``accuracy``...). ``loss`` is a scalar.
            When ``params`` is a :class:`Variables`, ``loss_fn`` receives the
            ``Variables`` and may return the model's new state as ``aux["state"]``
            (:func:`supervised` does); it is not reported as a metric.
        optimizer: an ``fl.optim`` gradient transformation; ``opt_state`` is
            ``optimizer.init(params)`` (``optimizer.init(variables.params)``).
        donate: let the step overwrite the buffers of ``params`` and ``opt_state``
            (``jit``'s ``donate_argnums=(0, 1)``): saves allocations, but the arrays passed
            in are invalidated by each call; keep the returned ones (docs/sharp_bits.md).
        jit_compile: ``False`` returns the plain Python step (for debugging).

    Returns:
        The jitted step (its ``trace_count`` shows how often it was traced: once per
        distinct batch shape).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> def loss_fn(params, batch, key):
        ...     x, y = batch
        ...     err = x @ params["w"] - y
        ...     return fnp.mean(err ** 2), {"max_err": fnp.max(fnp.abs(err))}
        >>> x = fl.random.normal(fl.random.key(0), (32, 3))
        >>> y = x @ fnp.array([1.0, -2.0, 0.5])
        >>> params = {"w": fnp.zeros(3)}
        >>> opt = optim.sgd(0.1)
        >>> opt_state = opt.init(params)
        >>> step = fl.train.make_step(loss_fn, opt)
        >>> for i in range(100):
        ...     params, opt_state, metrics = step(params, opt_state, (x, y), fl.random.key(i))
        >>> sorted(metrics), float(metrics["loss"]) < 1e-6, step.trace_count
        (['grad_norm', 'loss', 'max_err'], True, 1)
    """
    objective = _objective(loss_fn)
    grad_fn = value_and_grad(objective, has_aux=True)

    def step(params, opt_state, batch, key):
        if isinstance(params, Variables):
            (loss, (aux, state)), grads = grad_fn(params.params, params.state, batch, key)
            updates, opt_state = optimizer.update(grads, opt_state, params.params)
            params = Variables(optim.apply_updates(params.params, updates), state)
        else:
            (loss, (aux, _)), grads = grad_fn(params, None, batch, key)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optim.apply_updates(params, updates)
        metrics = {"loss": loss, "grad_norm": global_norm(grads), **aux}
        return params, opt_state, metrics

    step.__name__ = step.__qualname__ = f"train_step[{getattr(loss_fn, '__name__', 'loss')}]"
    if not jit_compile:
        return step
    return jit(step, donate_argnums=(0, 1) if donate else ())


def _objective(loss_fn):
    """``loss_fn`` as ``f(params, state, batch, key) -> (loss, (aux, new_state))``.

    ``state`` is None for plain params; for :class:`Variables` it is passed in beside the
    differentiated ``params`` (so no gradient is taken for it) and comes back updated.
    """
    def objective(params, state, batch, key):
        stateful = state is not None
        out = loss_fn(Variables(params, state) if stateful else params, batch, key)
        loss, aux = split_loss(out)
        aux = dict(aux)
        new_state = aux.pop("state", state) if stateful else None
        return loss, (aux, new_state)

    return objective


def make_eval_step(loss_fn, *, jit_compile=True):
    """A jitted ``evaluate(params, batch, key) -> metrics``: the loss and aux, no update.

    Uses ``loss_fn.evaluate`` when the loss function has one (:func:`supervised` does:
    the model runs with ``train=False``), else ``loss_fn`` itself. A model state in the aux
    dict is dropped: evaluation never changes it.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> evaluate = fl.train.make_eval_step(lambda p, batch, key: fnp.sum(p * batch))
        >>> evaluate(fnp.ones(3), fnp.arange(3.0), fl.random.key(0))
        {'loss': Array(3., dtype=float32)}
    """
    fn = getattr(loss_fn, "evaluate", loss_fn)

    def evaluate(params, batch, key):
        loss, aux = split_loss(fn(params, batch, key), caller="make_eval_step")
        return {"loss": loss, **{k: v for k, v in aux.items() if k != "state"}}

    return jit(evaluate) if jit_compile else evaluate
