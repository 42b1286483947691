"""The staging trace: run a Python function on abstract values and record a :class:`Graph`.

While a function is staged, every ``bind`` reaching the :class:`StagingTrace` appends one
equation whose output types come from the primitive's ``abstract_eval``; nothing is
computed. What an equation reads is one of:

* a tracer of this trace: its variable;
* a Python scalar: a :class:`Literal` (weakly typed);
* an array (``fl.Array``, ndarray): a constant of the graph, captured by reference;
* a tracer of an enclosing transform (a function closing over a value of an outer
  ``grad``/``vmap``/``jit``): an extra input of the graph, returned as ``captured`` so
  the caller passes it explicitly (closure conversion). Tracers of any other transform
  are leaked tracers.

Equations on Python scalars only are evaluated at once, as they would be eagerly.
Function-valued primitives (``custom_vjp_call``, ``custom_jvp_call``, ``checkpoint_call``)
have no shape rule: their function is staged into a sub-graph kept on the equation.
"""

from __future__ import annotations

import linecache
import os
import sys

from functorch_lite.core import (
    Array,
    ConcretizationError,
    Trace,
    Tracer,
    aval_of,
    bind,
    eager_apply,
    to_buffer,
    trace_scope,
)
from functorch_lite.jit.graph import Eqn, Graph, Literal, Var

__all__ = ["StagingTrace", "StagingTracer", "trace_to_graph", "eval_graph", "eval_eqns",
           "user_frame"]

_PY_SCALARS = (bool, int, float, complex)
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class StagingTracer(Tracer):
    __slots__ = ("var",)

    def __init__(self, trace, var):
        self._trace = trace
        self.var = var

    @property
    def aval(self):
        return self.var.aval


class StagingTrace(Trace):
    """Records equations. ``fun_name`` and ``transform_name`` appear in error messages."""

    def __init__(self, parent, fun_name, transform_name="jit"):
        super().__init__(parent)
        self.fun_name = fun_name
        self.transform_name = transform_name
        self.eqns = []
        self.constvars, self.consts = [], []
        self._const_ids = {}      # id(original value) -> Var
        self._keep_alive = []     # the originals, so their ids stay unique
        self.captured, self.captured_vars = [], []
        self._captured_ids = {}   # id(foreign tracer) -> Var

    def new_input(self, aval):
        return StagingTracer(self, Var(aval))

    # --- what an equation reads ------------------------------------------------------
    def to_var(self, x):
        t = type(x)
        if t is StagingTracer and x._trace is self:
            return x.var
        if t in _PY_SCALARS:
            return Literal(x)
        if isinstance(x, Tracer):
            return self._capture(x)
        return self._const(x)

    def _capture(self, tracer):
        var = self._captured_ids.get(id(tracer))
        if var is None:
            self.check_foreign(tracer)
            var = self._captured_ids[id(tracer)] = Var(tracer.aval)
            self.captured.append(tracer)
            self.captured_vars.append(var)
        return var

    def _const(self, x):
        var = self._const_ids.get(id(x))
        if var is None:
            value = x if type(x) is Array else Array(to_buffer(x))
            var = self._const_ids[id(x)] = Var(value.aval)
            self._keep_alive.append(x)
            self.constvars.append(var)
            self.consts.append(value)
        return var

    # --- recording -------------------------------------------------------------------
    def process(self, prim, args, params):
        for a in args:
            if type(a) not in _PY_SCALARS:
                break
        else:
            if not getattr(prim, "effectful", False):
                return eager_apply(prim, args, params)
        if prim.abstract_eval is None:
            return self._stage_call(prim, args, params)
        inputs = [self.to_var(a) for a in args]
        out_aval = prim.abstract_eval(*[v.aval for v in inputs], **params)
        if prim.multiple_results:
            outputs = [Var(a) for a in out_aval]
            self.eqns.append(Eqn(prim, inputs, params, outputs))
            return tuple(StagingTracer(self, v) for v in outputs)
        out = Var(out_aval)
        self.eqns.append(Eqn(prim, inputs, params, [out]))
        return StagingTracer(self, out)

    def _stage_call(self, prim, args, params):
        """A function-valued primitive: stage ``params['fun']`` into a sub-graph."""
        name = params.get("name", prim.name)
        sub, captured, _ = trace_to_graph(params["fun"], [aval_of(a) for a in args],
                                          name=name, transform_name=self.transform_name)
        inputs = [self.to_var(a) for a in args] + [self.to_var(c) for c in captured]
        outputs = [Var(a) for a in sub.out_avals]
        eqn = Eqn(prim, inputs, params, outputs, subgraph=sub)
        # Re-binding the primitive (to keep its custom rule under an outer transform) is
        # only sound when its function closes over no traced value of this trace.
        eqn.params = params if not captured else dict(params, _inline_only=True)
        self.eqns.append(eqn)
        return tuple(StagingTracer(self, v) for v in outputs)

    def concrete(self, tracer):
        raise ConcretizationError(concretization_message(
            self.transform_name, self.fun_name, tracer.aval.str_short()))

    def to_graph(self, invars, outs):
        outvars = [self.to_var(o) for o in outs]
        return Graph(self.constvars, self.consts, list(invars) + self.captured_vars,
                     self.eqns, outvars)


def trace_to_graph(flat_fun, in_avals, *, name, transform_name="jit"):
    """Stage ``flat_fun`` (flat arguments -> sequence of outputs) at ``in_avals``.

    Returns ``(graph, captured, raw_outputs)``: the graph's inputs are one per aval and then
    one per captured value of an enclosing trace (``captured``, in order); ``raw_outputs``
    is what the function returned (for callers that check structures).
    """
    from functorch_lite.core import ctx

    trace = StagingTrace(ctx.trace, name, transform_name)
    tracers = [trace.new_input(a) for a in in_avals]
    try:
        with trace_scope(trace):
            outs = flat_fun(*tracers)
            outs = list(outs)
            graph = trace.to_graph([t.var for t in tracers], outs)
    finally:
        trace.invalidate()
    return graph, trace.captured, outs


def eval_graph(graph, args):
    """Run ``graph`` on ``args`` by binding each equation on the current trace.

    This is how a staged program runs under an outer transform (grad, vmap of a jitted
    function): the transform sees the primitives one by one, custom rules included.
    """
    env = dict(zip(graph.constvars, graph.consts))
    env.update(zip(graph.invars, args))
    eval_eqns(graph.eqns, env)
    return [env[v] if type(v) is Var else v.value for v in graph.outvars]


def eval_eqns(eqns, env):
    """Bind each of ``eqns`` on the current trace, reading and writing the values of
    their variables in the dict ``env`` (what :func:`eval_graph` does to a whole graph)."""
    for eqn in eqns:
        ins = [env[v] if type(v) is Var else v.value for v in eqn.inputs]
        if eqn.subgraph is not None and eqn.params.get("_inline_only"):
            outs = eval_graph(eqn.subgraph, ins)
        else:
            out = bind(eqn.prim, *ins, **eqn.params)
            outs = out if eqn.prim.multiple_results else (out,)
        for v, o in zip(eqn.outputs, outs):
            # Eagerly, arithmetic on Python scalars gives arrays; a value the graph types
            # as a weak scalar goes back to a Python scalar so it promotes weakly later.
            if type(o) is Array and v.aval.weak_type and v.aval.shape == ():
                o = o._buf.item()
            env[v] = o


# --------------------------------------------------------------------------------------
# Errors that point at the user's line
# --------------------------------------------------------------------------------------
def user_frame():
    """``(filename, lineno, line)`` of the innermost frame outside functorch_lite."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return None
    filename, lineno = frame.f_code.co_filename, frame.f_lineno
    return filename, lineno, linecache.getline(filename, lineno).strip()


def concretization_message(transform_name, fun_name, aval_str):
    where = user_frame()
    at = "" if where is None else f" at {where[0]}:{where[1]}" + (
        f"\n    {where[2]}" if where[2] else "")
    return (
        f"{transform_name}({fun_name}): a traced {aval_str} value was used where a concrete "
        f"Python value is needed (if/while, bool(), int(), float(), .item()){at}\n"
        "While tracing, only the shape and dtype of the value are known, not the value. "
        "Fixes: branch with fl.cond / fl.switch (or fnp.where), loop with fl.while_loop / "
        "fl.fori_loop / fl.scan, or mark the argument as static with "
        "jit(..., static_argnums=...) (one trace per distinct value).")
