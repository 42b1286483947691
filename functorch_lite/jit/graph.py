"""The graph IR: typed variables, equations, constants and sub-graphs, printed like a jaxpr.

A :class:`Graph` is a straight-line program. Its inputs are ``invars``; ``constvars`` are
bound to ``consts`` (arrays captured by reference while tracing); each :class:`Eqn`
applies one primitive to variables or :class:`Literal` Python scalars and defines new
variables; ``outvars`` are what it returns. Control-flow primitives hold sub-graphs in
their params; function-valued primitives (``custom_vjp_call`` ...) keep their traced body
in ``Eqn.subgraph`` so code generation can inline it while other transforms still see the
primitive with its custom rule.

Invariants:
* every variable is defined once, before it is used (:func:`typecheck` verifies it);
* an equation has a list of outputs, one per result (one for a single-result primitive);
* a primitive with ``effectful = True`` (``debug_print``) is never removed or merged.
"""

from __future__ import annotations

import itertools

import numpy as np

from functorch_lite.core import ShapedArray, aval_of

__all__ = ["Var", "Literal", "Eqn", "Graph", "typecheck", "is_effectful"]


class Var:
    """A typed variable; identity is the variable (names are given when printing)."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Var({self.aval.str_short()})"


class Literal:
    """A Python scalar written into the program (weakly typed, NEP 50)."""

    __slots__ = ("value", "aval")

    def __init__(self, value):
        self.value = value
        self.aval = aval_of(value)

    def __repr__(self):
        return f"Literal({self.value!r})"


class Eqn:
    """``outputs = prim(*inputs, **params)``."""

    __slots__ = ("prim", "inputs", "params", "outputs", "subgraph")

    def __init__(self, prim, inputs, params, outputs, subgraph=None):
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.outputs = outputs
        self.subgraph = subgraph

    def __repr__(self):
        return f"Eqn({self.prim.name})"


def is_effectful(eqn) -> bool:
    """A side-effecting equation: never removed, folded or merged by the passes."""
    if getattr(eqn.prim, "effectful", False):
        return True
    return any(g.effectful for g in subgraphs_of(eqn))


def subgraphs_of(eqn):
    """The graphs an equation holds: its inline body and the graphs in its params."""
    found = [eqn.subgraph] if eqn.subgraph is not None else []
    for value in eqn.params.values():
        if type(value) is Graph:
            found.append(value)
        elif type(value) is tuple:
            found.extend(v for v in value if type(v) is Graph)
    return found


class Graph:
    """A traced program: ``{ lambda constvars; invars. let eqns in outvars }``.

    Attributes:
        constvars, consts: variables bound to captured arrays (``fl.Array`` values).
        invars: the inputs, in order.
        eqns: the equations, in program order.
        outvars: the outputs (variables or literals).
    """

    __slots__ = ("constvars", "consts", "invars", "eqns", "outvars", "compiled_cache",
                 "runs", "__weakref__")

    def __init__(self, constvars, consts, invars, eqns, outvars):
        self.constvars = list(constvars)
        self.consts = list(consts)
        self.invars = list(invars)
        self.eqns = list(eqns)
        self.outvars = list(outvars)
        self.compiled_cache = {}   # backend module -> generated Python function
        self.runs = 0              # eager runs so far (see codegen.run_graph)

    @property
    def in_avals(self):
        return [v.aval for v in self.invars]

    @property
    def out_avals(self):
        return [v.aval for v in self.outvars]

    @property
    def effectful(self):
        return any(is_effectful(e) for e in self.eqns)

    def __len__(self):
        return len(self.eqns)

    def __str__(self):
        return format_graph(self)

    def __repr__(self):
        return format_graph(self)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(format_graph(self))


# --------------------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------------------
def _names():
    """a, b, ..., z, ba, bb, ... (skipping nothing: names are never Python code)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    for n in itertools.count(1):
        for combo in itertools.product(letters, repeat=n):
            if n > 1 and combo[0] == "a":
                continue
            yield "".join(combo)


class _Namer:
    def __init__(self):
        self.names = {}
        self.fresh = _names()

    def __call__(self, v):
        if type(v) is Literal:
            return repr(v.value)
        name = self.names.get(v)
        if name is None:
            name = self.names[v] = next(self.fresh)
        return name

    def typed(self, v):
        return f"{self(v)}:{v.aval.str_short()}"


def _format_param(value, namer, indent):
    if type(value) is Graph:
        return _format(value, namer, indent + 4).lstrip()
    if type(value) is tuple and value and all(type(v) is Graph for v in value):
        inner = "\n".join(" " * (indent + 4) + _format(v, namer, indent + 4).lstrip()
                          for v in value)
        return "(\n" + inner + "\n" + " " * (indent + 2) + ")"
    if isinstance(value, np.dtype):
        return value.name
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    if type(value) is dict:
        return "{...}"
    return repr(value)


def _format_eqn(eqn, namer, indent):
    params = ""
    shown = {k: v for k, v in eqn.params.items() if k != "store" and not k.startswith("_")}
    if shown:
        params = "[" + ", ".join(f"{k}={_format_param(v, namer, indent)}"
                                 for k, v in shown.items()) + "]"
    outs = " ".join(namer.typed(v) for v in eqn.outputs) or "_"
    ins = " ".join(namer(v) for v in eqn.inputs)
    return f"{outs} = {eqn.prim.name}{params} {ins}".rstrip()


def _format(graph, namer, indent):
    pad = " " * indent
    consts = " ".join(namer.typed(v) for v in graph.constvars)
    ins = " ".join(namer.typed(v) for v in graph.invars)
    head = f"{pad}{{ lambda {consts}{'; ' if consts else ''}{ins}. let"
    body = [f"{pad}    {_format_eqn(e, namer, indent + 4)}" for e in graph.eqns]
    outs = ", ".join(namer(v) for v in graph.outvars)
    tail = f"{pad}  in ({outs}{',' if len(graph.outvars) == 1 else ''}) }}"
    return "\n".join([head] + body + [tail])


def format_graph(graph) -> str:
    """The graph as text, jaxpr style: ``{ lambda consts; inputs. let eqns in (outs) }``."""
    return _format(graph, _Namer(), 0)


# --------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------
def typecheck(graph) -> None:
    """Raise AssertionError unless every variable is defined once before use and every
    equation's output types agree with its primitive's shape rule (passes keep this)."""
    defined = set()

    def define(v):
        assert type(v) is Var, f"only variables can be defined, got {v!r}"
        assert v not in defined, f"{v!r} is defined twice"
        defined.add(v)

    for v in graph.constvars + graph.invars:
        define(v)
    assert len(graph.constvars) == len(graph.consts), "constvars and consts differ in length"
    for eqn in graph.eqns:
        for v in eqn.inputs:
            assert type(v) is Literal or v in defined, \
                f"{eqn.prim.name} uses {v!r} before it is defined"
        if eqn.prim.abstract_eval is not None:
            want = eqn.prim.abstract_eval(*[v.aval for v in eqn.inputs], **eqn.params)
            want = list(want) if eqn.prim.multiple_results else [want]
            got = [v.aval for v in eqn.outputs]
            assert [(a.shape, a.dtype) for a in got] == [(a.shape, a.dtype) for a in want], \
                f"{eqn.prim.name}: outputs {got} disagree with its shape rule {want}"
        for sub in subgraphs_of(eqn):
            typecheck(sub)
        for v in eqn.outputs:
            define(v)
    for v in graph.outvars:
        assert type(v) is Literal or v in defined, f"output {v!r} is never defined"
