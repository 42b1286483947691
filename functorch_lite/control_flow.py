"""Structured control flow: ``cond``, ``switch``, ``while_loop``, ``fori_loop``, ``scan``.

With no transform active they run as plain Python (a Python ``if``/``while``/``for``), so
eager code pays nothing for them. Under a transform they trace the user's functions into
graphs once and bind one primitive (see ``primitives/control_flow.py``): under ``jit``
each stays one node with a compiled body, and ``grad``/``vmap`` apply the primitive's
rules. Semantics and signatures are JAX's (``jax.lax.cond`` ...): operands and carries
are pytrees; a carry keeps its structure, shapes and dtypes across iterations (a Python
scalar in ``init`` adopts the dtype the body gives it); branches return the same
structure, shapes and dtypes.
"""

from __future__ import annotations

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite import tree as tree_util
from functorch_lite._traceback import api_boundary
from functorch_lite.core import Array, ShapedArray, Tracer, aval_of, bind, ctx, is_weak_scalar
from functorch_lite.jit.graph import Graph, Var
from functorch_lite.jit.passes import optimize
from functorch_lite.jit.staging import trace_to_graph
from functorch_lite.primitives.control_flow import cond_p, scan_p, while_p

__all__ = ["cond", "switch", "while_loop", "fori_loop", "scan"]

_PY_SCALARS = (bool, int, float, complex)


def _name(f):
    return getattr(f, "__name__", type(f).__name__)


def _paths(treedef):
    pairs, _ = tree_util.flatten_with_path(treedef.unflatten([0] * treedef.num_leaves))
    return [tree_util.keystr(p) or "(root)" for p, _ in pairs]


def _stage(flat_fun, avals, what, fun):
    """Trace ``flat_fun`` at ``avals``: ``(optimized graph, captured outer values)``."""
    graph, captured, _ = trace_to_graph(flat_fun, avals, name=_name(fun), transform_name=what)
    return optimize(graph), captured


def _captured_first(graph, num_captured):
    """``graph`` with its trailing captured inputs moved to the front."""
    k = len(graph.invars) - num_captured
    return Graph(graph.constvars, graph.consts, graph.invars[k:] + graph.invars[:k],
                 graph.eqns, graph.outvars)


def _same(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and a.weak_type == b.weak_type


def _cast_to(leaves, avals):
    """Leaves made to match ``avals`` where only weak typing differs (a Python scalar or
    a value computed from Python scalars takes the dtype it is combined with)."""
    out = []
    for x, a in zip(leaves, avals):
        xa = aval_of(x)
        if xa.weak_type and not _same(xa, a):
            if a.weak_type and type(x) in _PY_SCALARS:
                x = {"b": bool, "i": int, "u": int, "f": float, "c": complex}[a.dtype.kind](x)
            else:
                x = fnp.astype(x, a.dtype)
        out.append(x)
    return out


def _describe(what, fun, path, a, b, where):
    return (f"{what}: {_name(fun)} must return {where} with the same shapes and dtypes as "
            f"its input, but the carry at {path} is {a.str_short()} on input and "
            f"{b.str_short()} on output. Cast the value (x.astype(...)) or fix the shape.")


def _join_carry(what, fun, paths, in_avals, out_avals):
    """The carry avals after one trace: a weakly typed entry adopts the body's dtype."""
    joined = []
    for p, a, b in zip(paths, in_avals, out_avals):
        if a.shape != b.shape:
            raise TypeError(_describe(what, fun, p, a, b, "a carry"))
        if a.weak_type and not b.weak_type:
            joined.append(ShapedArray(a.shape, b.dtype))
        elif a.weak_type and a.dtype != b.dtype:
            joined.append(ShapedArray(a.shape, np.result_type(a.promotion_operand(),
                                                              b.promotion_operand())))
        elif not a.weak_type and not b.weak_type and a.dtype != b.dtype:
            raise TypeError(_describe(what, fun, p, a, b, "a carry"))
        else:
            joined.append(a)
    return joined


def _check_tree(what, fun, expected, got, thing):
    if expected != got:
        raise TypeError(f"{what}: {_name(fun)} must return {thing} with the same structure "
                        f"as its input: expected {expected}, got {got}")


def _check_eager_carry(what, fun, tree0, avals0, new):
    leaves, treedef = tree_util.flatten(new)
    _check_tree(what, fun, tree0, treedef, "a carry")
    for p, a, x in zip(_paths(tree0), avals0, leaves):
        b = aval_of(x)
        if a.shape != b.shape or (a.dtype != b.dtype and not (a.weak_type or b.weak_type)):
            raise TypeError(_describe(what, fun, p, a, b, "a carry"))
    return leaves


def _is_static_scalar(x):
    return type(x) in _PY_SCALARS or isinstance(x, np.integer | np.bool_)


# --------------------------------------------------------------------------------------
# cond and switch
# --------------------------------------------------------------------------------------
@api_boundary
def cond(pred, true_fun, false_fun, *operands):
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, traceable.

    Under ``jit`` both branches are traced (they must return the same structure, shapes
    and dtypes) and one runs; under ``vmap`` with a batched ``pred`` both run and each
    example selects its result; ``grad`` differentiates the branch taken.

    Args:
        pred: a scalar (bool or number; nonzero means true).
        true_fun, false_fun: functions of the operands.
        *operands: pytrees passed to the branch.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> f = fl.jit(lambda x: fl.cond(x > 0, fnp.sqrt, lambda v: -v, x))
        >>> f(fnp.array(4.0)), f(fnp.array(-2.0))
        (Array(2., dtype=float32), Array(2., dtype=float32))
    """
    if not isinstance(pred, Tracer):  # a concrete predicate picks the branch in Python
        if aval_of(pred).shape != ():
            raise TypeError(f"fl.cond: pred must be a scalar, got shape {aval_of(pred).shape}; "
                            "use fnp.where to select elementwise")
        return true_fun(*operands) if bool(pred) else false_fun(*operands)
    pred_aval = aval_of(pred)
    if pred_aval.shape != ():
        raise TypeError(f"fl.cond: pred must be a scalar, got {pred_aval.str_short()}; use "
                        "fnp.where to select elementwise")
    index = fnp.astype(pred if pred_aval.dtype == np.bool_ else fnp.not_equal(pred, 0),
                       np.int32)
    return _switch("fl.cond", index, (false_fun, true_fun), operands)


@api_boundary
def switch(index, branches, *operands):
    """``branches[index](*operands)``, with ``index`` clamped to ``[0, len(branches) - 1]``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> branches = [lambda x: x + 1, lambda x: x * 10, lambda x: -x]
        >>> fl.jit(lambda i, x: fl.switch(i, branches, x))(fnp.array(1), fnp.array(2.0))
        Array(20., dtype=float32)
    """
    branches = tuple(branches)
    if not branches:
        raise ValueError("fl.switch: branches must not be empty")
    if not isinstance(index, Tracer):
        aval = aval_of(index)
        if aval.shape != () or aval.dtype.kind not in "iub":
            raise TypeError(f"fl.switch: index must be an integer scalar, got "
                            f"{aval.str_short()}")
        i = min(max(int(index), 0), len(branches) - 1)
        return branches[i](*operands)
    aval = aval_of(index)
    if aval.shape != () or aval.dtype.kind not in "iub":
        raise TypeError(f"fl.switch: index must be an integer scalar, got {aval.str_short()}")
    index = fnp.astype(fnp.clip(index, 0, len(branches) - 1), np.int32)
    return _switch("fl.switch", index, branches, operands)


def switch_clamped(index, branches, *operands):
    """:func:`switch` for an index known to be in range (the control-flow rules re-use
    an index that was clamped once already)."""
    if not isinstance(index, Tracer):
        return branches[int(index)](*operands)
    return _switch("fl.switch", index, tuple(branches), operands)


def _switch(what, index, branches, operands):
    flat, in_tree = tree_util.flatten(operands)
    avals = [aval_of(x) for x in flat]

    def trace_branch(fun, out_avals=None):
        store = {}

        def flat_fun(*leaves):
            out, store["tree"] = tree_util.flatten(fun(*in_tree.unflatten(leaves)))
            return out if out_avals is None else _cast_to(out, out_avals)

        graph, captured = _stage(flat_fun, avals, what, fun)
        return graph, captured, store["tree"]

    traced = [trace_branch(f) for f in branches]
    out_tree = traced[0][2]
    for fun, (_, _, tree) in zip(branches[1:], traced[1:]):
        if tree != out_tree:
            raise TypeError(f"{what}: the branches must return the same structure, but "
                            f"{_name(branches[0])} returns {out_tree} and {_name(fun)} "
                            f"returns {tree}")
    joined = _join_branches(what, branches, [g.out_avals for g, _, _ in traced], out_tree)
    traced = [t if all(_same(a, b) for a, b in zip(t[0].out_avals, joined))
              else trace_branch(f, joined) for f, t in zip(branches, traced)]
    captured = []
    for _, cap, _ in traced:
        captured.extend(c for c in cap if not any(c is k for k in captured))
    graphs = tuple(_with_all_captured(g, cap, captured) for g, cap, _ in traced)
    outs = bind(cond_p, index, *flat, *captured, branches=graphs)
    return out_tree.unflatten(list(outs))


def _join_branches(what, branches, out_avals, out_tree):
    joined = []
    for p, avals in zip(_paths(out_tree), zip(*out_avals)):
        strong = [a for a in avals if not a.weak_type]
        first = avals[0]
        if any(a.shape != first.shape for a in avals) or \
                any(a.dtype != strong[0].dtype for a in strong):
            kinds = ", ".join(f"{_name(f)}: {a.str_short()}" for f, a in zip(branches, avals))
            raise TypeError(f"{what}: the branches must return the same shapes and dtypes, "
                            f"but the output at {p} differs ({kinds}). Cast one of them.")
        if strong:
            joined.append(strong[0])
        elif all(_same(a, first) for a in avals):
            joined.append(first)
        else:
            joined.append(ShapedArray(first.shape, np.result_type(
                *(a.promotion_operand() for a in avals))))
    return joined


def _with_all_captured(graph, captured, all_captured):
    """``graph`` taking every branch's captured values (ignoring the ones it does not use)."""
    k = len(graph.invars) - len(captured)
    own = {id(c): v for c, v in zip(captured, graph.invars[k:])}
    extra = [own.get(id(c)) or Var(aval_of(c)) for c in all_captured]
    return Graph(graph.constvars, graph.consts, graph.invars[:k] + extra, graph.eqns,
                 graph.outvars)


# --------------------------------------------------------------------------------------
# while_loop and fori_loop
# --------------------------------------------------------------------------------------
@api_boundary
def while_loop(cond_fun, body_fun, init_val):
    """``val = init_val; while cond_fun(val): val = body_fun(val); return val``, traceable.

    The carry keeps its structure, shapes and dtypes. Differentiable in forward mode
    (``jvp``, ``jacfwd``); for reverse mode use :func:`fori_loop` with static bounds or
    :func:`scan`. Under ``vmap`` with a batched predicate it runs until every example is
    done, holding finished examples fixed.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.jit(lambda x: fl.while_loop(lambda v: v < 100, lambda v: v * 2, x))(
        ...     fnp.array(3.0))
        Array(192., dtype=float32)
    """
    what = "fl.while_loop"
    flat, tree = tree_util.flatten(init_val)
    avals = [aval_of(x) for x in flat]
    if ctx.trace is None:
        val = init_val
        while _eager_pred(what, cond_fun, cond_fun(val)):
            new = body_fun(val)
            _check_eager_carry(what, body_fun, tree, avals, new)
            val = new
        return _scalars_as_arrays(val)

    def stage(avals):
        store = {}

        def body(*leaves):
            out, store["tree"] = tree_util.flatten(body_fun(tree.unflatten(leaves)))
            _check_tree(what, body_fun, tree, store["tree"], "a carry")
            return _cast_to(out, avals)

        body_graph, body_captured = _stage(body, avals, what, body_fun)
        return body_graph, body_captured

    body_graph, body_captured = stage(avals)
    joined = _join_carry(what, body_fun, _paths(tree), avals, body_graph.out_avals)
    if any(not _same(a, b) for a, b in zip(avals, joined)):
        flat, avals = _cast_to(flat, joined), joined
        body_graph, body_captured = stage(avals)
        _join_carry(what, body_fun, _paths(tree), avals, body_graph.out_avals)

    def pred(*leaves):
        out = cond_fun(tree.unflatten(leaves))
        out_aval = aval_of(out)
        if out_aval.shape != () or out_aval.dtype != np.bool_:
            raise TypeError(f"{what}: {_name(cond_fun)} must return a boolean scalar, got "
                            f"{out_aval.str_short()}")
        return [out]

    cond_graph, cond_captured = _stage(pred, avals, what, cond_fun)
    outs = bind(while_p, *cond_captured, *body_captured, *flat,
                cond_graph=_captured_first(cond_graph, len(cond_captured)),
                body_graph=_captured_first(body_graph, len(body_captured)),
                cond_nconsts=len(cond_captured), body_nconsts=len(body_captured))
    return tree.unflatten(list(outs))


def _eager_pred(what, cond_fun, value):
    aval = aval_of(value)
    if aval.shape != ():
        raise TypeError(f"{what}: {_name(cond_fun)} must return a boolean scalar, got "
                        f"{aval.str_short()}")
    return bool(value)


@api_boundary
def fori_loop(lower, upper, body_fun, init_val):
    """``val = init_val; for i in range(lower, upper): val = body_fun(i, val)``, traceable.

    With Python int bounds the loop is a :func:`scan` (reverse-differentiable) and ``i``
    is weakly typed like a Python int (``v + i`` keeps ``v``'s dtype); eagerly it is a
    Python int. With traced bounds the loop is a :func:`while_loop` and ``i`` is an
    integer array of the bounds' dtype.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.jit(lambda x: fl.fori_loop(0, 3, lambda i, v: v + i, x))(fnp.array(10.0))
        Array(13., dtype=float32)
    """
    if _is_static_scalar(lower) and _is_static_scalar(upper):
        lower, upper = int(lower), int(upper)
        if ctx.trace is None:
            what, tree = "fl.fori_loop", tree_util.structure(init_val)
            avals = [aval_of(x) for x in tree_util.leaves(init_val)]
            val = init_val
            for i in range(lower, upper):
                val = body_fun(i, val)
                _check_eager_carry(what, body_fun, tree, avals, val)
            return _scalars_as_arrays(val)

        def step(carry, _):
            i, val = carry
            return (i + 1, body_fun(i, val)), None

        (_, val), _ = scan(step, (lower, init_val), None, length=max(upper - lower, 0))
        return val

    def body(carry):
        i, val = carry
        return i + 1, body_fun(i, val)

    dtype = np.result_type(*(aval_of(b).dtype for b in (lower, upper)))
    start = fnp.astype(lower, dtype)
    _, val = while_loop(lambda carry: carry[0] < upper, body, (start, init_val))
    return val


# --------------------------------------------------------------------------------------
# scan
# --------------------------------------------------------------------------------------
@api_boundary
def scan(f, init, xs=None, length=None, reverse=False):
    """Loop ``f(carry, x) -> (carry, y)`` over the leading axis of ``xs``; returns
    ``(final carry, stacked ys)``. JAX's ``lax.scan``.

    ``xs`` may be None (then give ``length``) or any pytree of arrays with the same
    leading size; ``reverse=True`` walks from the end (ys stay in index order).
    Differentiable in both modes: reverse mode saves the carry entering each step.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> def cumulative(total, x):
        ...     total = total + x
        ...     return total, total
        >>> fl.scan(cumulative, fnp.array(0.0), fnp.arange(4.0))
        (Array(6., dtype=float32), Array([0., 1., 3., 6.], dtype=float32))
    """
    what = "fl.scan"
    xs_flat, xs_tree = tree_util.flatten(xs)
    xs_flat = [fnp.asarray(x) if not isinstance(x, Array | Tracer) else x for x in xs_flat]
    length = _scan_length(xs_flat, xs_tree, length)
    init_flat, carry_tree = tree_util.flatten(init)
    avals = [aval_of(x) for x in init_flat]
    if ctx.trace is None and length > 0:
        return _eager_scan(f, init, xs_flat, xs_tree, length, reverse, carry_tree, avals)
    x_avals = [ShapedArray(aval_of(x).shape[1:], aval_of(x).dtype) for x in xs_flat]
    n = len(avals)

    def stage(avals):
        store = {}

        def body(*leaves):
            out = f(carry_tree.unflatten(leaves[:n]), xs_tree.unflatten(leaves[n:]))
            if not isinstance(out, tuple | list) or len(out) != 2:
                raise TypeError(f"{what}: {_name(f)} must return a pair (carry, y), got "
                                f"{type(out).__name__}")
            carry_out, store["carry"] = tree_util.flatten(out[0])
            _check_tree(what, f, carry_tree, store["carry"], "a carry")
            ys, store["ys"] = tree_util.flatten(out[1])
            return _cast_to(carry_out, avals) + ys

        graph, captured = _stage(body, avals + x_avals, what, f)
        return graph, captured, store["ys"]

    graph, captured, ys_tree = stage(avals)
    joined = _join_carry(what, f, _paths(carry_tree), avals, graph.out_avals[:n])
    if any(not _same(a, b) for a, b in zip(avals, joined)):
        init_flat, avals = _cast_to(init_flat, joined), joined
        graph, captured, ys_tree = stage(avals)
        _join_carry(what, f, _paths(carry_tree), avals, graph.out_avals[:n])
    outs = bind(scan_p, *captured, *init_flat, *xs_flat,
                body=_captured_first(graph, len(captured)), num_consts=len(captured),
                num_carry=n, length=length, reverse=bool(reverse))
    return carry_tree.unflatten(list(outs[:n])), ys_tree.unflatten(list(outs[n:]))


def _scan_length(xs_flat, xs_tree, length):
    lengths = []
    for p, x in zip(_paths(xs_tree), xs_flat):
        shape = aval_of(x).shape
        if not shape:
            raise ValueError(f"fl.scan: xs{p if p != '(root)' else ''} is a scalar; every "
                             "leaf of xs needs a leading axis to scan over")
        lengths.append((p, shape[0]))
    if length is not None:
        length = int(length)
    sizes = {n for _, n in lengths} | ({length} if length is not None else set())
    if len(sizes) > 1:
        found = ", ".join(f"xs{p if p != '(root)' else ''}: {n}" for p, n in lengths)
        raise ValueError(f"fl.scan: the leading axes of xs must all have the same size"
                         f"{'' if length is None else f' (length={length})'}; got {found}")
    if not sizes:
        raise ValueError("fl.scan: with xs=None (or no arrays in xs), pass length=...")
    return sizes.pop()


def _eager_scan(f, init, xs_flat, xs_tree, length, reverse, carry_tree, avals):
    what = "fl.scan"
    carry, ys = init, []
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        out = f(carry, xs_tree.unflatten([x[i] for x in xs_flat]))
        if not isinstance(out, tuple | list) or len(out) != 2:
            raise TypeError(f"{what}: {_name(f)} must return a pair (carry, y), got "
                            f"{type(out).__name__}")
        carry, y = out
        _check_eager_carry(what, f, carry_tree, avals, carry)
        ys.append(y)
    if reverse:
        ys.reverse()
    leaves = [tree_util.leaves(y) for y in ys]
    ys_tree = tree_util.structure(ys[0])
    for y in ys[1:]:
        _check_tree(what, f, ys_tree, tree_util.structure(y), "ys")
    stacked = [fnp.stack(column) for column in zip(*leaves)]
    return _scalars_as_arrays(carry), ys_tree.unflatten(stacked)


def _scalars_as_arrays(tree):
    """An eager loop's final carry, with Python scalar leaves as arrays (default dtypes):
    what the compiled loop returns, so jit and eager agree."""
    return tree_util.map(lambda v: fnp.asarray(v) if is_weak_scalar(v) else v, tree)
