"""vmap: the batching trace.

A batched value is a ``BatchTracer`` holding the full array ``val`` and the axis
``batch_dim`` that indexes the examples; its ``aval`` is the per-example value. Values that
do not depend on the mapped axis stay plain (unbatched) values, so Python control flow on
them keeps working and rules only pay for what is batched. Each primitive's ``batch`` rule
turns one call on batched operands into one call on whole arrays: no loop over examples.
"""

from __future__ import annotations

import functools
import operator

from functorch_lite import tree as tree_util
from functorch_lite._traceback import api_boundary
from functorch_lite.core import (
    Array,
    ConcretizationError,
    ShapedArray,
    Trace,
    Tracer,
    aval_of,
    bind,
    ctx,
    trace_scope,
)

__all__ = ["vmap"]


class BatchTracer(Tracer):
    __slots__ = ("val", "batch_dim")

    def __init__(self, trace, val, batch_dim):
        self._trace = trace
        self.val = val
        self.batch_dim = batch_dim

    def underlying_value(self):
        return self.val

    @property
    def aval(self):
        full = aval_of(self.val)
        shape = full.shape[:self.batch_dim] + full.shape[self.batch_dim + 1:]
        return ShapedArray(shape, full.dtype, full.weak_type)

    # The batched value answers these itself (no abstract value built): fnp functions and
    # rules ask often.
    @property
    def shape(self):
        v, d = self.val, self.batch_dim
        full = v._buf.shape if type(v) is Array else v.shape
        return full[:d] + full[d + 1:]

    @property
    def ndim(self):
        v = self.val
        return (v._buf.ndim if type(v) is Array else v.ndim) - 1

    @property
    def dtype(self):
        v = self.val
        return v._buf.dtype if type(v) is Array else v.dtype


_VALUE_AND_BATCH_DIM = operator.attrgetter("val", "batch_dim")


class BatchTrace(Trace):
    transform_name = "vmap"

    def __init__(self, parent, axis_size):
        super().__init__(parent)
        self.axis_size = axis_size

    def process(self, prim, args, params):
        vals, dims, active = self.split_args(args, BatchTracer, _VALUE_AND_BATCH_DIM)
        previous = ctx.trace
        ctx.trace = self.parent
        try:
            if not active:
                return bind(prim, *vals, **params)
            if prim.batch is None:
                raise NotImplementedError(f"vmap: the primitive {prim.name} has no batching rule")
            out, out_dim = prim.batch(vals, dims, **params)
        finally:
            ctx.trace = previous
        if prim.multiple_results:
            if not isinstance(out_dim, (tuple, list)):
                out_dim = (out_dim,) * len(out)
            return tuple(o if d is None else BatchTracer(self, o, d)
                         for o, d in zip(out, out_dim))
        return out if out_dim is None else BatchTracer(self, out, out_dim)

    def concrete(self, tracer):
        raise ConcretizationError(
            f"vmap: a batched {tracer.aval.str_short()} value was used where a single Python "
            "value is needed (if/while/bool()/float()). Each example may differ; use "
            "fnp.where or fl.cond to branch per example.")


def _leaves_with_prefix(name, prefix, full, what):
    """Per-leaf values of ``prefix`` (a pytree prefix of ``full``; None is a leaf)."""
    prefix_leaves, prefix_def = tree_util.flatten(prefix, is_leaf=lambda x: x is None)
    try:
        subtrees = prefix_def.flatten_up_to(full)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"vmap: {name}={prefix!r} is not a prefix of the {what}'s structure "
            f"{tree_util.structure(full)}: {e}") from None
    out = []
    for value, sub in zip(prefix_leaves, subtrees):
        out.extend([value] * len(tree_util.leaves(sub)))
    return out


def _move_batch_axis(x, src, dst, size):
    from functorch_lite import numpy as fnp

    if src is None:
        x = fnp.asarray(x)
        x = fnp.broadcast_to(fnp.expand_dims(x, 0), (size,) + tuple(x.shape))
        src = 0
    if dst is None:
        raise ValueError("vmap: out_axes=None for an output that depends on the mapped axis; "
                         "give an int out axis for it")
    nd = aval_of(x).ndim
    dst = dst % nd
    return x if src == dst else fnp.moveaxis(x, src, dst)


def vmap(f, in_axes=0, out_axes=0, axis_size=None):
    """Vectorize ``f`` over an axis of its inputs.

    Args:
        f: a function of arrays (pytrees of arrays).
        in_axes: the mapped axis of each input: an int (negative allowed) or None
            (broadcast), or a tuple with one entry per positional argument, each a pytree
            prefix of that argument.
        out_axes: where the mapped axis goes in each output (same forms).
        axis_size: the size of the mapped axis when no input is mapped.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> xs = fnp.arange(6.0).reshape(3, 2)
        >>> fl.vmap(lambda x, w: fnp.dot(x, w), in_axes=(0, None))(xs, fnp.ones(2))
        Array([1., 5., 9.], dtype=float32)
    """
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)

    @api_boundary
    @functools.wraps(f)
    def vmapped(*args):
        from functorch_lite import numpy as fnp

        if isinstance(in_axes, tuple):
            if len(in_axes) != len(args):
                raise ValueError(f"vmap: in_axes has {len(in_axes)} entries but "
                                 f"{getattr(f, '__name__', 'f')} was called with {len(args)} "
                                 "positional arguments")
            axes_prefix = in_axes
        else:
            axes_prefix = (in_axes,) * len(args)
        flat, in_tree = tree_util.flatten(args)
        flat_axes = _leaves_with_prefix("in_axes", axes_prefix, args, "arguments")
        paths = [tree_util.keystr(p) for p, _ in tree_util.flatten_with_path(args)[0]]
        size, size_path = axis_size, None
        normalized = []
        for x, ax, path in zip(flat, flat_axes, paths):
            if ax is None:
                normalized.append(None)
                continue
            nd = aval_of(x).ndim
            if not -nd <= ax < nd:
                raise ValueError(f"vmap: in_axes {ax} is out of range for the argument "
                                 f"args{path} of shape {aval_of(x).shape}")
            ax %= nd
            n = aval_of(x).shape[ax]
            if size is None:
                size, size_path = n, path
            elif n != size:
                where = f"args{size_path}" if size_path is not None else "axis_size"
                raise ValueError(f"vmap: inconsistent sizes of the mapped axis: args{path} has "
                                 f"{n} along axis {ax}, but {where} has {size}")
            normalized.append(ax)
        if size is None:
            raise ValueError("vmap: no argument is mapped (all in_axes are None); pass "
                             "axis_size=... to say how many examples to produce")
        trace = BatchTrace(ctx.trace, size)
        tracers = [x if ax is None else BatchTracer(trace, fnp.asarray(x), ax)
                   for x, ax in zip(flat, normalized)]
        try:
            with trace_scope(trace):
                out = f(*tree_util.unflatten(in_tree, tracers))
        finally:
            trace.invalidate()
        out_flat, out_tree = tree_util.flatten(out)
        flat_out_axes = _leaves_with_prefix("out_axes", out_axes, out, "output")
        results = []
        for o, dst in zip(out_flat, flat_out_axes):
            if type(o) is BatchTracer and o._trace is trace:
                results.append(_move_batch_axis(o.val, o.batch_dim, dst, size))
            elif dst is None:
                results.append(o)
            else:
                results.append(_move_batch_axis(o, None, dst, size))
        return tree_util.unflatten(out_tree, results)

    return vmapped
