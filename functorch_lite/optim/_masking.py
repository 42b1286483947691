"""Masks: apply a transform to some leaves only (``masked``), or freeze leaves (``freeze``).

A mask is *static*: a pytree of Python bools shaped like the params (or like a prefix of
them: ``{"encoder": True, "head": False}`` covers whole subtrees), or a callable
``params -> mask`` such as ``lambda p: tree.map(lambda x: x.ndim > 1, p)``. Under ``jit``
it is part of the traced program, never a traced value.

The inner transform of ``masked`` sees a tree in which the unselected leaves are ``None``
(an empty node), so its state holds arrays for the selected leaves only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from functorch_lite import tree as tree_util
from functorch_lite.optim._base import (
    GradientTransformation,
    OptimizerTypeError,
    OptimizerValueError,
    flatten_like,
    make_transform,
    named,
    set_to_zero,
)

__all__ = ["masked", "freeze", "MaskedState"]


class MaskedState(NamedTuple):
    """``inner_state``: the state of the masked transform (built on the selected leaves)."""

    inner_state: Any


def leaf_flags(fn_name: str, mask, tree) -> list[bool]:
    """One Python bool per leaf of ``tree``, from a mask tree, a mask prefix or a callable."""
    mask_tree = mask(tree) if callable(mask) else mask
    flags, mask_def = tree_util.flatten(mask_tree)
    for path, flag in tree_util.leaves_with_path(mask_tree):
        if not isinstance(flag, (bool, np.bool_)):
            raise OptimizerTypeError(
                fn_name, f"mask leaf {tree_util.keystr(path) or '(root)'} is "
                f"{type(flag).__name__} {flag!r:.60}; a mask holds Python bools (it is "
                f"static, not traced), e.g. tree.map(lambda p: p.ndim > 1, params)")
    try:
        subtrees = mask_def.flatten_up_to(tree)
    except ValueError:
        raise OptimizerValueError(
            fn_name, f"the mask has structure {mask_def}, which is neither the structure "
            f"of the tree it masks, {tree_util.structure(tree)}, nor a prefix of it; build "
            f"the mask from the params, e.g. tree.map(lambda p: p.ndim > 1, params)") from None
    out = []
    for flag, sub in zip(flags, subtrees):
        out.extend([bool(flag)] * len(tree_util.leaves(sub)))
    return out


def _select(tree, flags):
    """``tree`` with the leaves whose flag is False replaced by None (an empty node)."""
    leaves, treedef = tree_util.flatten(tree)
    return treedef.unflatten([x if f else None for x, f in zip(leaves, flags)])


def masked(inner: GradientTransformation, mask) -> GradientTransformation:
    """Apply ``inner`` to the leaves where ``mask`` is True; pass the others through.

    Args:
        inner: the transform to apply to the selected leaves.
        mask: pytree of Python bools like the params (or a prefix of them), or a callable
            returning one. **True = transformed by inner**; False = the incoming update is
            returned unchanged. A callable is applied to the params in ``init`` and to the
            incoming updates in ``update`` (they have the same structure).

    Returns:
        A :class:`GradientTransformation` with state :class:`MaskedState`.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> params = {"w": fnp.ones(2), "b": fnp.ones(1)}
        >>> opt = optim.masked(optim.scale(10.0), {"w": True, "b": False})
        >>> grads = {"w": fnp.ones(2), "b": fnp.ones(1)}
        >>> opt.update(grads, opt.init(params), params)[0]
        {'b': Array([1.], dtype=float32), 'w': Array([10., 10.], dtype=float32)}
    """
    if not isinstance(inner, GradientTransformation):
        raise TypeError(f"masked: inner must be a GradientTransformation such as "
                        f"optim.adam(1e-3), got {type(inner).__name__}")
    if not callable(mask):
        tree_util.flatten(mask)  # fail early on a mask that is not a pytree

    def init(params):
        flags = leaf_flags("masked.init", mask, params)
        return MaskedState(inner.init(_select(params, flags)))

    def update(grads, state, params=None, **extra_args):
        flags = leaf_flags("masked.update", mask, grads)
        leaves, treedef = tree_util.flatten(grads)
        if params is not None:
            flatten_like("masked.update", treedef, params, "params tree", "grads")
            params = _select(params, flags)
        inner_updates, inner_state = inner.update(_select(grads, flags), state.inner_state,
                                                  params, **extra_args)
        selected = iter(tree_util.leaves(inner_updates))
        merged = [next(selected) if f else g for g, f in zip(leaves, flags)]
        return treedef.unflatten(merged), MaskedState(inner_state)

    return make_transform("masked", init, update)


def freeze(mask) -> GradientTransformation:
    """Freeze parameters (PyTorch's ``requires_grad=False``): zero updates where mask is True.

    Polarity: **True = frozen** (the update is zero, the parameter never moves); False =
    trainable (the update passes through unchanged). Put it *last* in a chain, after the
    optimizer, so nothing downstream (momentum, weight decay) can move a frozen leaf::

        optim.chain(optim.adamw(1e-3), optim.freeze({"encoder": True, "head": False}))

    Args:
        mask: pytree of Python bools like the params (or a prefix), or a callable
            ``params -> mask``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> params = {"encoder": fnp.ones(2), "head": fnp.ones(1)}
        >>> opt = optim.chain(optim.sgd(0.1), optim.freeze({"encoder": True, "head": False}))
        >>> grads = {"encoder": fnp.ones(2), "head": fnp.ones(1)}
        >>> updates, _ = opt.update(grads, opt.init(params), params)
        >>> optim.apply_updates(params, updates)
        {'encoder': Array([1., 1.], dtype=float32), 'head': Array([0.9], dtype=float32)}
    """
    return named("freeze", masked(set_to_zero(), mask))
