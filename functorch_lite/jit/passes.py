"""Graph passes run before code generation: simplification, constant folding, common
subexpression elimination and dead-code elimination.

Each pass returns a new :class:`Graph` with the same inputs and outputs (by position) and
the same meaning; :func:`~functorch_lite.jit.graph.typecheck` holds after each. The passes
keep every primitive's semantics exactly (``x * 1`` is only dropped when the result has
``x``'s own shape, dtype and weak type; a rewrite only trades ops that give the same bits,
like ``a + (-b)`` for ``a - b``), so an optimized graph can also be evaluated under an
outer transform. Effectful equations (``debug_print``) are never removed, folded or
merged. Buffer reuse and fusion come later.
"""

from __future__ import annotations

import functools

import numpy as np

from functorch_lite.core import aval_of, eager_apply
from functorch_lite.jit.graph import Eqn, Graph, Literal, Var, is_effectful, subgraphs_of

__all__ = ["optimize", "simplify", "fold_constants", "cse", "sink_negations", "dce"]

# Largest result (in elements) that constant folding computes at compile time; bigger
# results stay in the program so they are not stored in the compiled function.
FOLD_LIMIT = 1 << 16


def optimize(graph: Graph) -> Graph:
    """All passes, in an order where each one feeds the next."""
    graph = simplify(graph)
    graph = fold_constants(graph)
    graph = simplify(graph)  # folding may have produced arrays of ones and zeros
    graph = cse(graph)
    graph = sink_negations(graph)
    return dce(graph)


def _same_type(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and a.weak_type == b.weak_type


class _Rewriter:
    """Walks the equations with a substitution ``var -> var or literal``."""

    def __init__(self, graph):
        self.graph = graph
        self.subst = {}
        self.eqns = []
        self.constvars = list(graph.constvars)
        self.consts = list(graph.consts)

    def read(self, v):
        return self.subst.get(v, v) if type(v) is Var else v

    def inputs(self, eqn):
        return [self.read(v) for v in eqn.inputs]

    def finish(self):
        return Graph(self.constvars, self.consts, self.graph.invars, self.eqns,
                     [self.read(v) for v in self.graph.outvars])


def _with_inputs(eqn, inputs, subgraph=None):
    return Eqn(eqn.prim, inputs, eqn.params, eqn.outputs,
               eqn.subgraph if subgraph is None else subgraph)


# --------------------------------------------------------------------------------------
# Simplification of trivial operations
# --------------------------------------------------------------------------------------
class _Constants:
    """Which constant variables hold a small array filled with one value (for ``x * 1``
    where the 1 was folded into an array of ones), also seen through a ``broadcast_to``
    (the ones that seed the gradient of a ``sum``)."""

    def __init__(self, graph):
        self.values = dict(zip(graph.constvars, graph.consts))
        self.broadcast_of = {}  # output of a broadcast_to -> its operand

    def equals(self, v, value):
        v = self.broadcast_of.get(v, v)
        if type(v) is Literal:
            return type(v.value) is not bool and v.value == value
        const = self.values.get(v)
        if const is None or const.size > 64 or const.dtype.kind == "b":
            return False
        buf = const._buf
        return bool((buf == value).all())


def _identity_operand(eqn, ins, consts):
    """The input that ``eqn`` returns unchanged, or None."""
    name, params = eqn.prim.name, eqn.params
    _is_literal = consts.equals
    out = eqn.outputs[0].aval if len(eqn.outputs) == 1 else None
    candidate = None
    if name == "multiply":
        candidate = ins[0] if _is_literal(ins[1], 1) else ins[1] if _is_literal(ins[0], 1) \
            else None
    elif name == "add":
        candidate = ins[0] if _is_literal(ins[1], 0) else ins[1] if _is_literal(ins[0], 0) \
            else None
    elif name in ("subtract",):
        candidate = ins[0] if _is_literal(ins[1], 0) else None
    elif name in ("true_divide", "power"):
        candidate = ins[0] if _is_literal(ins[1], 1) else None
    elif name in ("reshape", "broadcast_to", "convert_element_type"):
        candidate = ins[0]
    elif name == "transpose":
        candidate = ins[0] if params["perm"] == tuple(range(len(params["perm"]))) else None
    if candidate is not None and out is not None and _same_type(candidate.aval, out):
        return candidate
    return None


def simplify(graph: Graph) -> Graph:
    """Drop ``x*1``, ``x+0``, ``x-0``, ``x/1``, ``x**1`` (the 1 or 0 a literal or a small
    constant array of them), reshapes/broadcasts/casts to the same type and identity
    transposes; merge a transpose of a transpose and a reshape of a reshape; ``-(-x)`` is
    ``x``; an elementwise op reads ``x`` instead of ``broadcast_to(x)`` when its other
    operands broadcast it anyway (the gradient of a ``sum`` or ``mean``)."""
    rw = _Rewriter(graph)
    consts = _Constants(graph)
    producer = {}  # var -> the equation that defined it (after rewriting)
    for eqn in graph.eqns:
        ins = rw.inputs(eqn)
        sub = simplify(eqn.subgraph) if eqn.subgraph is not None else None
        if not is_effectful(eqn) and sub is None:
            eqn, ins = _compose(eqn, ins, producer)
            same = _identity_operand(eqn, ins, consts)
            if same is not None:
                rw.subst[eqn.outputs[0]] = same
                continue
            inner = producer.get(ins[0]) if ins and type(ins[0]) is Var else None
            if inner is not None and eqn.prim is inner.prim and eqn.prim.name == "negative":
                rw.subst[eqn.outputs[0]] = inner.inputs[0]
                continue
            if getattr(eqn.prim, "elementwise", False) and len(eqn.outputs) == 1:
                ins = _unbroadcast_operands(eqn, ins, producer)
        new = _with_inputs(eqn, ins, sub)
        for v in new.outputs:
            producer[v] = new
        if new.prim.name == "broadcast_to":
            consts.broadcast_of[new.outputs[0]] = ins[0]
        rw.eqns.append(new)
    return rw.finish()


def _compose(eqn, ins, producer):
    """``transpose(transpose(x))`` and ``reshape(reshape(x))`` as one op on ``x``:
    ``(eqn, ins)`` rewritten, or as they were."""
    name = eqn.prim.name
    inner = producer.get(ins[0]) if ins and type(ins[0]) is Var else None
    if inner is None or inner.prim is not eqn.prim or name not in ("transpose", "reshape"):
        return eqn, ins
    params = eqn.params
    if name == "transpose":
        first, second = inner.params["perm"], eqn.params["perm"]
        params = {"perm": tuple(first[p] for p in second)}
    ins = [inner.inputs[0]]
    return Eqn(eqn.prim, ins, params, eqn.outputs), ins


def _unbroadcast_operands(eqn, ins, producer):
    """``ins`` with each ``broadcast_to(x)`` operand replaced by ``x`` where the result
    keeps its shape (the other operands broadcast ``x`` the same way)."""
    shape = eqn.outputs[0].aval.shape
    ins = list(ins)
    for k, v in enumerate(ins):
        inner = producer.get(v) if type(v) is Var else None
        if inner is None or inner.prim.name != "broadcast_to" or type(inner.inputs[0]) is not Var:
            continue
        trial = ins[:k] + [inner.inputs[0]] + ins[k + 1:]
        if np.broadcast_shapes(*(u.aval.shape for u in trial)) == shape:
            ins = trial
    return ins


# --------------------------------------------------------------------------------------
# Constant folding
# --------------------------------------------------------------------------------------
def fold_constants(graph: Graph, limit: int = FOLD_LIMIT) -> Graph:
    """Compute now the equations whose inputs are all constants or literals and whose
    results are small; their results become constants of the graph."""
    rw = _Rewriter(graph)
    values = dict(zip(graph.constvars, graph.consts))
    for eqn in graph.eqns:
        ins = rw.inputs(eqn)
        foldable = (not is_effectful(eqn) and not subgraphs_of(eqn)
                    and all(type(v) is Literal or v in values for v in ins)
                    and all(v.aval.size <= limit for v in eqn.outputs))
        if foldable:
            args = [v.value if type(v) is Literal else values[v] for v in ins]
            out = eager_apply(eqn.prim, args, eqn.params)
            outs = list(out) if eqn.prim.multiple_results else [out]
            if all(aval_of(o).shape == v.aval.shape and aval_of(o).dtype == v.aval.dtype
                   for o, v in zip(outs, eqn.outputs)):
                for v, o in zip(eqn.outputs, outs):
                    var = Var(v.aval)
                    values[var] = o
                    rw.constvars.append(var)
                    rw.consts.append(o)
                    rw.subst[v] = var
                continue
        rw.eqns.append(_with_inputs(eqn, ins))
    return rw.finish()


# --------------------------------------------------------------------------------------
# Common subexpression elimination
# --------------------------------------------------------------------------------------
def _key(eqn, ins):
    if is_effectful(eqn) or eqn.subgraph is not None:
        return None
    operands = tuple(v if type(v) is Var else ("literal", type(v.value), repr(v.value))
                     for v in ins)
    key = (eqn.prim, operands, tuple(sorted(eqn.params.items())))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def cse(graph: Graph) -> Graph:
    """Reuse the result of an earlier identical equation (same primitive, operands and
    params) instead of computing it again."""
    rw = _Rewriter(graph)
    seen = {}
    for eqn in graph.eqns:
        ins = rw.inputs(eqn)
        sub = cse(eqn.subgraph) if eqn.subgraph is not None else None
        key = _key(eqn, ins)
        earlier = seen.get(key) if key is not None else None
        if earlier is not None:
            for v, e in zip(eqn.outputs, earlier.outputs):
                rw.subst[v] = e
            continue
        new = _with_inputs(eqn, ins, sub)
        if key is not None:
            seen[key] = new
        rw.eqns.append(new)
    return rw.finish()


# --------------------------------------------------------------------------------------
# Negations sink towards the results
# --------------------------------------------------------------------------------------
def sink_negations(graph: Graph) -> Graph:
    """Move each float ``negative`` down through the ops that commute with it, where it
    vanishes or lands on a smaller array: ``a + (-b)`` is ``a - b``, ``a - (-b)`` is
    ``a + b``, ``(-a) * b`` and ``(-a) / b`` are ``-(a * b)`` and ``-(a / b)``, and
    ``sum(-x)`` is ``-sum(x)``. Every rewrite gives the same bits (IEEE rounding is
    symmetric in sign). A negation read by more than one equation stays where it is.

    Reverse mode makes these: the gradient of ``x - m`` with respect to ``m`` is
    ``-ct``, summed; sunk, the full-size negation becomes one on the row sums.

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> f = lambda x, y: fnp.sum(-x * y, axis=1)
        >>> graph = fl.make_graph(f, optimized=False)(np.ones((2, 3)), np.ones((2, 3)))
        >>> print(dce(sink_negations(graph)))
        { lambda a:f64[2,3] b:f64[2,3]. let
            c:f64[2,3] = multiply a b
            d:f64[2] = reduce_sum[axes=(1,)] c
            e:f64[2] = negative d
          in (e,) }
    """
    uses = {}
    for eqn in graph.eqns:
        for v in eqn.inputs:
            if type(v) is Var:
                uses[v] = uses.get(v, 0) + 1
    for v in graph.outvars:
        if type(v) is Var:
            uses[v] = uses.get(v, 0) + 2  # an output is never folded away
    negated = {}  # var read once, defined as ``negative(x)`` with float x -> x
    eqns = []
    for eqn in graph.eqns:
        rewritten = _sink(eqn, negated) if not is_effectful(eqn) else None
        for new in rewritten or (eqn,):
            eqns.append(new)
            (out,) = new.outputs if len(new.outputs) == 1 else (None,)
            if new.prim.name == "negative" and out is not None and uses.get(out, 0) == 1 \
                    and out.aval.dtype.kind == "f" and type(new.inputs[0]) is Var:
                negated[out] = new.inputs[0]
    return Graph(graph.constvars, graph.consts, graph.invars, eqns, graph.outvars)


def _sink(eqn, negated):
    """The equations replacing ``eqn`` with its negated operands' negations moved past it,
    or None. A negated operand read here is read nowhere else, so its ``negative`` dies."""
    if len(eqn.outputs) != 1 or eqn.subgraph is not None \
            or eqn.outputs[0].aval.dtype.kind != "f":
        return None
    name, ins, (out,) = eqn.prim.name, eqn.inputs, eqn.outputs
    flags = [type(v) is Var and v in negated for v in ins]
    plain = [negated[v] if f else v for v, f in zip(ins, flags)]
    prims = _prims()
    if name == "add" and any(flags):
        if flags[0] and flags[1]:
            return _negated(prims["add"], plain, eqn)
        a, b = (ins[0], plain[1]) if flags[1] else (ins[1], plain[0])
        return [Eqn(prims["subtract"], [a, b], {}, [out])]
    if name == "subtract" and any(flags):
        if flags[1] and not flags[0]:
            return [Eqn(prims["add"], plain, {}, [out])]
        if flags[0] and not flags[1]:
            return _negated(prims["add"], plain, eqn)
        return [Eqn(prims["subtract"], [plain[1], plain[0]], {}, [out])]
    if name in ("multiply", "true_divide") and any(flags):
        if flags[0] and flags[1]:
            return [Eqn(eqn.prim, plain, {}, [out])]
        return _negated(eqn.prim, plain, eqn)
    if name == "reduce_sum" and flags[0]:
        return _negated(eqn.prim, plain, eqn, eqn.params)
    return None


def _negated(prim, ins, eqn, params=None):
    """``out = negative(prim(*ins))`` in two equations, ``out`` being ``eqn``'s result."""
    (out,) = eqn.outputs
    inner = Var(out.aval)
    return [Eqn(prim, ins, params or {}, [inner]), Eqn(_prims()["negative"], [inner], {}, [out])]


@functools.cache
def _prims():
    from functorch_lite.primitives.elementwise import add_p, multiply_p, negative_p, subtract_p
    return {"add": add_p, "subtract": subtract_p, "multiply": multiply_p,
            "negative": negative_p}


# --------------------------------------------------------------------------------------
# Dead-code elimination
# --------------------------------------------------------------------------------------
def dce(graph: Graph) -> Graph:
    """Drop equations whose results are never used (effectful ones stay) and unused
    constants. Inputs are kept: the signature does not change."""
    live = {v for v in graph.outvars if type(v) is Var}
    kept = []
    for eqn in reversed(graph.eqns):
        if is_effectful(eqn) or any(v in live for v in eqn.outputs):
            if eqn.subgraph is not None:
                eqn = _with_inputs(eqn, eqn.inputs, dce(eqn.subgraph))
            kept.append(eqn)
            live.update(v for v in eqn.inputs if type(v) is Var)
    kept.reverse()
    consts = [(v, c) for v, c in zip(graph.constvars, graph.consts) if v in live]
    return Graph([v for v, _ in consts], [c for _, c in consts], graph.invars, kept,
                 graph.outvars)
