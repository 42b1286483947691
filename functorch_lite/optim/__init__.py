"""``fl.optim``: optimizers as stateless gradient transformations (Optax-shaped).

An optimizer is a pair of pure functions: ``state = opt.init(params)`` and
``updates, state = opt.update(grads, state, params)``; ``optim.apply_updates(params,
updates)`` takes the step. States are NamedTuples of arrays (the step count is an int32
array in them), so ``init``/``update`` run under ``fl.jit`` and ``fl.vmap``, and a state
can be saved like parameters. Bigger optimizers are ``chain`` s of small transforms.

Conventions: names and signatures follow Optax; formulas and default hyperparameters
follow ``torch.optim`` where the two differ (RMSprop/Adagrad eps outside the square root,
AdamW ``weight_decay=1e-2``). Every ``learning_rate`` may be a schedule ``step -> lr``.
Masks are static pytrees of Python bools (or callables ``params -> mask``): in ``masked``,
``add_decayed_weights``, ``adamw`` and ``lion``, True = *transformed / decayed*; in
``freeze``, True = *frozen* (PyTorch's ``requires_grad=False``).

Example:
    >>> import functorch_lite as fl
    >>> import functorch_lite.numpy as fnp
    >>> from functorch_lite import optim
    >>> def loss(p):
    ...     return fnp.sum((p["w"] * 2.0 + p["b"] - 1.0) ** 2)
    >>> params = {"w": fnp.zeros(3), "b": fnp.zeros(())}
    >>> opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(0.1))
    >>> state = opt.init(params)
    >>> @fl.jit
    ... def step(params, state):
    ...     grads = fl.grad(loss)(params)
    ...     updates, state = opt.update(grads, state, params)
    ...     return optim.apply_updates(params, updates), state
    >>> for _ in range(200):
    ...     params, state = step(params, state)
    >>> round(float(loss(params)), 4), step.trace_count
    (0.0, 1)
"""

from functorch_lite.optim._base import (
    EmptyState,
    GradientTransformation,
    apply_updates,
    chain,
    identity,
    set_to_zero,
    stateless,
)
from functorch_lite.optim._lbfgs import LbfgsState, MinimizeInfo, lbfgs, minimize
from functorch_lite.optim._masking import MaskedState, freeze, masked
from functorch_lite.optim._optimizers import adagrad, adam, adamw, lion, rmsprop, sgd
from functorch_lite.optim._schedules import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    join_schedules,
    linear_schedule,
    piecewise_constant_schedule,
    warmup_cosine_decay_schedule,
)
from functorch_lite.optim._transforms import (
    ScaleByAdagradState,
    ScaleByAdamState,
    ScaleByLionState,
    ScaleByRmsState,
    ScaleByScheduleState,
    TraceState,
    add_decayed_weights,
    clip,
    clip_by_global_norm,
    scale,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_lion,
    scale_by_rms,
    scale_by_schedule,
    trace,
)

__all__ = [
    "GradientTransformation", "EmptyState", "chain", "apply_updates", "identity",
    "set_to_zero", "stateless",
    "sgd", "adam", "adamw", "rmsprop", "adagrad", "lion",
    "scale", "scale_by_schedule", "scale_by_learning_rate", "trace", "scale_by_adam",
    "scale_by_rms", "scale_by_adagrad", "scale_by_lion", "clip", "clip_by_global_norm",
    "add_decayed_weights", "masked", "freeze",
    "constant_schedule", "linear_schedule", "exponential_decay", "cosine_decay_schedule",
    "warmup_cosine_decay_schedule", "piecewise_constant_schedule", "join_schedules",
    "lbfgs", "minimize", "MinimizeInfo",
    "TraceState", "ScaleByScheduleState", "ScaleByAdamState", "ScaleByRmsState",
    "ScaleByAdagradState", "ScaleByLionState", "MaskedState", "LbfgsState",
]
