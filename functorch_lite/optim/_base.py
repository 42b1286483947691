"""The gradient-transformation pair, ``chain``, ``apply_updates``, and shared checks.

An optimizer is a pair of pure functions (Optax's design):

* ``init(params) -> state``: a pytree of arrays (NamedTuples of arrays here), so a state
  crosses ``fl.jit`` / ``fl.vmap`` boundaries and can be saved like parameters;
* ``update(grads, state, params=None, **extra_args) -> (updates, new_state)``.

Everything that changes from step to step (moments, the step count) lives in the state as
arrays; everything fixed (hyperparameters, masks, tree structure) lives in the closure and
is static under ``jit``. So ``update`` never branches in Python on a traced value, and a
jitted step is traced once.

Invariant kept by every transform: an update leaf has the dtype of its gradient leaf
(Python-float hyperparameters are weakly typed; array scalars such as a scheduled learning
rate or a bias correction are cast to each leaf's dtype before they meet it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite import tree as tree_util
from functorch_lite._traceback import api_boundary

__all__ = ["GradientTransformation", "EmptyState", "chain", "apply_updates", "identity",
           "set_to_zero", "stateless"]

_INT32_MAX = int(np.iinfo(np.int32).max)


class GradientTransformation(NamedTuple):
    """An optimizer: the pure functions ``init(params)`` and ``update(grads, state, params)``.

    Attributes:
        init: ``params -> state``, a pytree of arrays.
        update: ``(grads, state, params=None, **extra_args) -> (updates, new_state)``;
            ``updates`` has the structure and dtypes of ``grads``; add it to the parameters
            with :func:`apply_updates`.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> params = {"w": fnp.array([1.0, -2.0])}
        >>> opt = optim.sgd(0.1)
        >>> state = opt.init(params)
        >>> updates, state = opt.update({"w": fnp.array([1.0, 1.0])}, state, params)
        >>> optim.apply_updates(params, updates)["w"]
        Array([ 0.9, -2.1], dtype=float32)
    """

    init: Callable
    update: Callable


class EmptyState(NamedTuple):
    """The state of a transform that keeps none (an empty pytree)."""


def make_transform(name: str, init: Callable, update: Callable) -> GradientTransformation:
    """A :class:`GradientTransformation` whose functions hide library frames in tracebacks
    and are named ``<name>.init`` / ``<name>.update`` (what error messages cite)."""
    init.__name__, init.__qualname__ = "init", f"{name}.init"
    update.__name__, update.__qualname__ = "update", f"{name}.update"
    return GradientTransformation(api_boundary(init), api_boundary(update))


class OptimizerError(Exception):
    """A mistake found by an optimizer's checks; ``detail`` is the message after the name
    of the function, so a composite optimizer can re-raise it under its own name."""

    def __init__(self, fn_name: str, detail: str):
        super().__init__(f"{fn_name}: {detail}")
        self.detail = detail


class OptimizerTypeError(OptimizerError, TypeError):
    pass


class OptimizerValueError(OptimizerError, ValueError):
    pass


def named(name: str, transform: GradientTransformation) -> GradientTransformation:
    """``transform`` under the user-facing ``name``: errors from its building blocks
    (``scale_by_adam.update: ...``) are re-raised as ``<name>.update: ...``."""
    def init(params):
        try:
            return transform.init(params)
        except OptimizerError as e:
            raise type(e)(f"{name}.init", e.detail) from None

    def update(grads, state, params=None, **extra_args):
        try:
            return transform.update(grads, state, params, **extra_args)
        except OptimizerError as e:
            raise type(e)(f"{name}.update", e.detail) from None

    return make_transform(name, init, update)


# --------------------------------------------------------------------------------------
# Checks shared by every transform. They run on Python structure and dtypes only, so under
# jit they cost nothing after the first trace.
# --------------------------------------------------------------------------------------
def _path_of(tree, index: int) -> str:
    path, _ = tree_util.leaves_with_path(tree)[index]
    return tree_util.keystr(path) or "(root)"


def leaf_dtype(x) -> np.dtype:
    dtype = getattr(x, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.result_type(x)


def check_float_leaves(fn_name: str, leaves: list, tree, what: str) -> None:
    """Raise a TypeError naming the first leaf of ``tree`` that is not real floating-point."""
    for i, x in enumerate(leaves):
        dtype = leaf_dtype(x)
        if dtype.kind != "f":
            raise OptimizerTypeError(
                fn_name, f"{what} leaf {_path_of(tree, i)} has dtype {dtype}; optimizers "
                f"update real floating-point arrays only. Keep integer, bool and complex "
                f"values out of the params tree (pass them as separate arguments), or cast "
                f"them with x.astype(fnp.float32)")


def flatten_like(fn_name: str, treedef, tree, what: str, reference_what: str) -> list:
    """The leaves of ``tree`` (the ``what``), after checking that its structure is
    ``treedef`` (that of the ``reference_what``)."""
    leaves, other_def = tree_util.flatten(tree)
    if other_def != treedef:
        raise OptimizerValueError(
            fn_name, f"the {what} has structure {other_def}, but the "
            f"{reference_what} has structure {treedef}. The grads, params and optimizer "
            f"state must describe the same parameters: call opt.init(params) again after "
            f"changing the model, and pass grads of exactly those params")
    return leaves


def map_leaves(fn_name: str, fn: Callable, grads, *others, names=(), num_outputs=1):
    """Apply ``fn(g, *other_leaves)`` leaf by leaf over ``grads`` and trees like it.

    Checks that ``grads`` holds floats and that every tree in ``others`` (named by
    ``names``: ``"optimizer state (mu)"``, ``"params"``...) has the structure of ``grads``. ``fn``
    returns ``num_outputs`` values; the result is that many trees (one tree when 1).
    """
    g_leaves, treedef = tree_util.flatten(grads)
    check_float_leaves(fn_name, g_leaves, grads, "grads")
    rest = [flatten_like(fn_name, treedef, other, name, "grads")
            for other, name in zip(others, names)]
    outs = [fn(*args) for args in zip(g_leaves, *rest)]
    if num_outputs == 1:
        return treedef.unflatten(outs)
    columns = zip(*outs) if outs else [()] * num_outputs
    return tuple(treedef.unflatten(list(column)) for column in columns)


def zeros_state(fn_name: str, params, fill: float = 0.0):
    """A tree of ``fill`` arrays shaped and typed like ``params`` (checked to be floats)."""
    leaves, treedef = tree_util.flatten(params)
    check_float_leaves(fn_name, leaves, params, "params")
    return treedef.unflatten([fnp.full_like(fnp.asarray(x), fill) for x in leaves])


def as_dtype(value, dtype, cache: dict):
    """``value`` (a Python float or a 0-d array) ready to multiply a ``dtype`` leaf.

    A Python float stays weak (it adopts the leaf's dtype for free); an array is cast once
    per dtype and remembered in ``cache`` for the other leaves of that dtype.
    """
    if type(value) is float or type(value) is int:
        return value
    cast = cache.get(dtype)
    if cast is None:
        value = fnp.asarray(value)
        cast = cache[dtype] = value if value.dtype == dtype else value.astype(dtype)
    return cast


def initial_count():
    """The step count every stateful transform starts from: an int32 zero."""
    return fnp.zeros((), dtype=fnp.int32)


def increment(count):
    """``count + 1``, saturating at the int32 maximum instead of wrapping around."""
    return fnp.where(count < _INT32_MAX, count + 1, count)


# --------------------------------------------------------------------------------------
# Hyperparameter checks
# --------------------------------------------------------------------------------------
def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool)


def check_learning_rate(fn_name: str, learning_rate) -> None:
    if callable(learning_rate):
        return
    if not _is_number(learning_rate) or not learning_rate >= 0:
        raise ValueError(
            f"{fn_name}: learning_rate must be a non-negative number or a schedule "
            f"(a callable step -> value, e.g. optim.cosine_decay_schedule(1e-3, 1000)), got "
            f"{learning_rate!r}. To maximize a function, minimize its negative instead")


def check_range(fn_name: str, name: str, value, low: float, high: float | None = None,
                high_inclusive: bool = False) -> float:
    """``value`` as a Python float after checking ``low <= value < high`` (or ``<= high``;
    ``high=None``: no upper bound). A Python float stays weakly typed in the update math,
    where a NumPy scalar (``np.float64(0.9)``) would promote float32 updates to float64."""
    below = not _is_number(value) or not value >= low
    above = high is not None and (value > high if high_inclusive else value >= high)
    if below or above:
        if high is None:
            allowed = f">= {low}"
        else:
            allowed = f"in [{low}, {high}{']' if high_inclusive else ')'}"
        raise ValueError(f"{fn_name}: {name} must be {allowed}, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------
# Combinators and trivial transforms
# --------------------------------------------------------------------------------------
def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply transforms one after the other; the state is the tuple of their states.

    Args:
        *transforms: :class:`GradientTransformation` s. Each receives the previous one's
            updates as its ``grads`` (and the same ``params`` and extra arguments).

    Returns:
        A :class:`GradientTransformation` whose state is ``tuple(inner states)``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> opt = optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.5))
        >>> params = fnp.array([0.0, 0.0])
        >>> updates, _ = opt.update(fnp.array([3.0, 4.0]), opt.init(params), params)
        >>> updates                     # clipped to norm 1, then scaled by -0.5
        Array([-0.3, -0.4], dtype=float32)
    """
    for i, t in enumerate(transforms):
        if not isinstance(t, GradientTransformation):
            raise TypeError(
                f"chain: argument {i} is a {type(t).__name__}, not a GradientTransformation;"
                f" pass optimizers and transforms such as optim.adam(1e-3) (called, not the "
                f"function optim.adam itself)")

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(grads, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise OptimizerValueError(
                "chain.update", f"expected the state from this chain's init (a tuple of "
                f"{len(transforms)} states), got {type(state).__name__}"
                f"{f' of length {len(state)}' if isinstance(state, tuple) else ''}")
        new_states = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params, **extra_args)
            new_states.append(s)
        return grads, tuple(new_states)

    return make_transform("chain", init, update)


def stateless(fn: Callable, name: str | None = None) -> GradientTransformation:
    """A transform from a function ``fn(updates, params) -> updates`` that keeps no state.

    Args:
        fn: receives the incoming updates and the params (None when not given).
        name: used in error messages (default: ``fn.__name__``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim, tree
        >>> halve = optim.stateless(lambda u, p: tree.map(lambda x: x / 2, u))
        >>> halve.update(fnp.array([2.0]), halve.init(None))[0]
        Array([1.], dtype=float32)
    """
    label = name or getattr(fn, "__name__", "stateless")

    def init(params):
        return EmptyState()

    def update(grads, state, params=None, **extra_args):
        return fn(grads, params), state

    return make_transform(label, init, update)


def identity() -> GradientTransformation:
    """The transform that returns its input unchanged (a placeholder in a chain).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> optim.identity().update(fnp.array([1.0]), optim.EmptyState())[0]
        Array([1.], dtype=float32)
    """
    return make_transform("identity", lambda params: EmptyState(),
                          lambda grads, state, params=None, **extra: (grads, state))


def set_to_zero() -> GradientTransformation:
    """The transform whose updates are all zeros (used by :func:`freeze`).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> optim.set_to_zero().update(fnp.array([1.0, 2.0]), optim.EmptyState())[0]
        Array([0., 0.], dtype=float32)
    """
    def update(grads, state, params=None, **extra_args):
        return map_leaves("set_to_zero.update", fnp.zeros_like, grads), state

    return make_transform("set_to_zero", lambda params: EmptyState(), update)


@api_boundary
def apply_updates(params: Any, updates: Any) -> Any:
    """``params + updates`` leaf by leaf, each result in its parameter's dtype.

    Args:
        params: a pytree of float arrays.
        updates: a pytree of the same structure (from an optimizer's ``update``).

    Returns:
        The new parameters (a new pytree; arrays are immutable).

    Raises:
        ValueError: when the two trees differ in structure (both are named).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> optim.apply_updates({"b": fnp.zeros(2, fnp.float16)}, {"b": fnp.ones(2)})
        {'b': Array([1., 1.], dtype=float16)}
    """
    p_leaves, treedef = tree_util.flatten(params)
    u_leaves = flatten_like("apply_updates", treedef, updates, "updates tree", "params")
    new = []
    for p, u in zip(p_leaves, u_leaves):
        x = p + u
        dtype = leaf_dtype(p)
        new.append(x if x.dtype == dtype else x.astype(dtype))
    return treedef.unflatten(new)
