"""Elementwise fusion on CuPy: each fused cluster becomes one generated CUDA kernel.

On a GPU an elementwise op is one kernel launch (~5-10 us of launch and CuPy dispatch)
plus a pass over device memory, so a chain of ten ops pays both ten times. The jit writes
each cluster as one ``cupy.ElementwiseKernel`` instead: one statement per fused equation,
every intermediate a register temporary, only the cluster's inputs and outputs in memory.

Clusters are found by :func:`~functorch_lite.jit.fusion.fuse` with :data:`POLICY`: the
CPU grouping (connected elementwise equations of one result shape, never through an
outside path), minus the CPU loop's limits: any size, no chunks, two equations suffice,
and only equations this module can write as CUDA (:func:`translatable`). Inputs of any
shape broadcasting to the cluster's are passed whole: CuPy broadcasts a kernel's
arguments, so a ``(n, 1)`` column or a 0-d scalar needs no code.

How each equation is written (:data:`FLOAT_OPS`, :data:`BOOL_OPS`, :data:`EXCLUDED`):

* every operand is first converted to the type NumPy's loop for that ufunc computes in
  (the result type for float results; the promoted operand type for comparisons; bool for
  logical ops), so results match eager CuPy/NumPy dtype for dtype. float16 is stored as
  CuPy's ``float16`` and computed in ``float``, rounded after every equation as NumPy's
  half loops do; float32 calls the ``f`` functions (``tanhf``), float64 the plain ones;
* ``where`` is a ternary, ``convert_element_type`` a cast, comparisons give ``bool``;
  Python scalars become typed literals (``0.5f``).
* a float ``reduce_sum`` ending a cluster (the CPU grouping joins one over trailing axes)
  becomes a ``cupy.ReductionKernel`` whose map function recomputes the chain it sums from
  the cluster's inputs in registers (layernorm's ``sum(c * c)`` never writes ``c * c``);
  when the summed value is an output of the cluster anyway, a plain ``.sum`` reads it.

Kernels are cached by their source (CuPy compiles each source once per device and keeps
the binary on disk). A cluster this module cannot write (see :func:`plan`) runs its
equations as plain CuPy calls. :func:`cuda_sources` shows the kernels a function gets.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from functorch_lite.jit.fusion import Policy, fuse, fused_elementwise_p
from functorch_lite.jit.graph import Literal

__all__ = ["POLICY", "FLOAT_OPS", "BOOL_OPS", "EXCLUDED", "Kernel", "writes_kernels",
           "translatable", "plan", "emit_kernels", "cuda_sources"]

# --------------------------------------------------------------------------------------
# What each fusable ufunc is in CUDA
# --------------------------------------------------------------------------------------
# Float results. Operands arrive in the compute type (float for float16 and float32,
# double for float64); ``{f}`` is that type's C suffix: "f" gives ``tanhf`` and ``0.5f``,
# "" gives ``tanh`` and ``0.5``. Operands are always names or literals, so repeating one
# costs nothing. NaN and signed zeros follow NumPy: ``maximum`` propagates NaN (fmaxf
# would drop it) and returns the second operand on ties, ``sign(-0.0)`` is 0.
FLOAT_OPS = {
    "add": "{0} + {1}",
    "subtract": "{0} - {1}",
    "multiply": "{0} * {1}",
    "true_divide": "{0} / {1}",
    "negative": "-{0}",
    "square": "{0} * {0}",
    "reciprocal": "1 / {0}",
    "conjugate": "{0}",  # of a real value
    "absolute": "fabs{f}({0})",
    "sign": "{0} > 0 ? 1 : ({0} < 0 ? -1 : ({0} == 0 ? 0 : {0}))",
    "floor": "floor{f}({0})",
    "ceil": "ceil{f}({0})",
    "trunc": "trunc{f}({0})",
    "rint": "rint{f}({0})",
    "sqrt": "sqrt{f}({0})",
    "cbrt": "cbrt{f}({0})",
    "exp": "exp{f}({0})",
    "exp2": "exp2{f}({0})",
    "expm1": "expm1{f}({0})",
    "log": "log{f}({0})",
    "log2": "log2{f}({0})",
    "log10": "log10{f}({0})",
    "log1p": "log1p{f}({0})",
    "sin": "sin{f}({0})",
    "cos": "cos{f}({0})",
    "tan": "tan{f}({0})",
    "arcsin": "asin{f}({0})",
    "arccos": "acos{f}({0})",
    "arctan": "atan{f}({0})",
    "sinh": "sinh{f}({0})",
    "cosh": "cosh{f}({0})",
    "tanh": "tanh{f}({0})",
    "arcsinh": "asinh{f}({0})",
    "arccosh": "acosh{f}({0})",
    "arctanh": "atanh{f}({0})",
    "power": "pow{f}({0}, {1})",
    "arctan2": "atan2{f}({0}, {1})",
    "hypot": "hypot{f}({0}, {1})",
    "copysign": "copysign{f}({0}, {1})",
    "maximum": "({0} > {1} || isnan({0})) ? {0} : {1}",
    "minimum": "({0} < {1} || isnan({0})) ? {0} : {1}",
    "heaviside": "{0} < 0 ? 0 : ({0} > 0 ? 1 : ({0} == 0 ? {1} : {0}))",
    # NumPy's npy_logaddexp: exact for equal infinities, NaN in, NaN out.
    "logaddexp": "{0} == {1} ? {0} + log{f}(2.0{f}) : ({0} > {1} ? {0} + log1p{f}(exp{f}("
                 "{1} - {0})) : ({0} < {1} ? {1} + log1p{f}(exp{f}({0} - {1})) : {0} - {1}))",
}

# Boolean results: (the type operands are converted to, expression). "promote": NumPy's
# promoted operand type (comparisons); "bool": truth values (logical ops, and the bitwise
# ops, which the CPU fusion only sees with bool results); "float": the operand's float
# type, float64 for integers (the predicates).
BOOL_OPS = {
    "equal": ("promote", "{0} == {1}"),
    "not_equal": ("promote", "{0} != {1}"),
    "less": ("promote", "{0} < {1}"),
    "less_equal": ("promote", "{0} <= {1}"),
    "greater": ("promote", "{0} > {1}"),
    "greater_equal": ("promote", "{0} >= {1}"),
    "logical_and": ("bool", "{0} && {1}"),
    "logical_or": ("bool", "{0} || {1}"),
    "logical_xor": ("bool", "{0} != {1}"),
    "logical_not": ("bool", "!{0}"),
    "bitwise_and": ("bool", "{0} && {1}"),
    "bitwise_or": ("bool", "{0} || {1}"),
    "bitwise_xor": ("bool", "{0} != {1}"),
    "invert": ("bool", "!{0}"),
    "isnan": ("float", "isnan({0})"),
    "isinf": ("float", "isinf({0})"),
    "isfinite": ("float", "isfinite({0})"),
    "signbit": ("float", "signbit({0})"),
}

# Fusable on the CPU but never written as CUDA: their equations stay plain CuPy calls.
EXCLUDED = {
    "floor_divide": "NumPy's float floor division corrects fmod's rounding (npy_divmod); "
                    "a one-line C expression differs from it at the edges",
    "remainder": "NumPy's float remainder takes the divisor's sign with fixes for zeros "
                 "(npy_divmod); a one-line C expression differs from it at the edges",
    "left_shift": "integer results only, and integer results are never fused",
    "right_shift": "integer results only, and integer results are never fused",
}

# C types of NumPy dtypes, as CuPy names them in kernel code.
_CTYPE = {"bool": "bool", "float16": "float16", "float32": "float", "float64": "double",
          "int8": "signed char", "int16": "short", "int32": "int", "int64": "long long",
          "uint8": "unsigned char", "uint16": "unsigned short", "uint32": "unsigned int",
          "uint64": "unsigned long long"}
_F16 = np.dtype(np.float16)
_F64 = np.dtype(np.float64)
_BOOL = np.dtype(bool)


def _compute_ctype(dtype):
    """The C type values of ``dtype`` are computed in: float16 widens to float."""
    return "float" if dtype == _F16 else _CTYPE[dtype.name]


def _literal(value, loop):
    """``value`` (a Python scalar) as a C literal of the loop dtype, or None."""
    if loop.kind == "f":
        value = float(value)
        if not np.isfinite(value):
            return None
        if loop == _F64:
            text = repr(value)
        else:
            # Rounded to the loop dtype first, as NumPy converts a weak scalar; the
            # shortest float32 text of that value reads back as exactly it.
            text = str(np.float32(loop.type(value))) + "f"
    elif loop.kind == "b":
        text = "true" if value else "false"
    elif loop.kind in "iu" and np.can_cast(np.min_scalar_type(int(value)), loop):
        text = repr(int(value))
    else:
        return None
    return f"({text})" if text.startswith("-") else text


def _operand(arg, loop):
    """A C expression for ``arg`` converted to the loop dtype's compute type."""
    if type(arg) is Literal:
        return _literal(arg.value, loop)
    text, dtype = arg[0], arg[1].dtype
    if dtype == loop:
        return f"float({text})" if dtype == _F16 else text
    if loop.kind in "iu":
        return None  # integer loops only over operands of that very type (no C promotion)
    if loop == _F16:  # rounded to half first, as NumPy casts operands to the loop type
        return f"float(float16({text}))"
    if dtype == _F16:
        text = f"float({text})"
    return f"{_compute_ctype(loop)}({text})"


def _loop_dtype(eqn, rule):
    """The dtype NumPy's loop for ``eqn`` computes in (see :data:`BOOL_OPS`)."""
    if rule == "bool":
        return _BOOL
    if rule == "float":
        dtype = eqn.inputs[0].aval.dtype
        return dtype if dtype.kind == "f" else _F64
    return np.result_type(*(v.aval.promotion_operand() for v in eqn.inputs))


def _expression(eqn, args):
    """The C expression computing ``eqn`` from ``args`` (one ``(name, aval)`` per variable,
    the :class:`Literal` itself for a literal), or None when it has no CUDA form."""
    out = eqn.outputs[0].aval.dtype
    name = eqn.prim.name
    if out.kind not in "fb" or any(a.aval.dtype.kind == "c" for a in eqn.inputs):
        return None
    if name == "convert_element_type":
        (x,) = args
        if type(x) is Literal:
            return None
        if x[1].dtype != _F16:
            return f"{_CTYPE[out.name]}({x[0]})"
        return f"float({x[0]})" if out.name == "float32" else f"{_CTYPE[out.name]}(float({x[0]}))"
    if name == "where":
        cond, *branches = args
        ops = [_operand(cond, _BOOL)] + [_operand(b, out) for b in branches]
        template = "{0} ? {1} : {2}"
    elif out.kind == "f" and eqn.prim.emit in FLOAT_OPS:
        ops = [_operand(a, out) for a in args]
        template = FLOAT_OPS[eqn.prim.emit]
    elif out.kind == "b" and eqn.prim.emit in BOOL_OPS:
        rule, template = BOOL_OPS[eqn.prim.emit]
        loop = _loop_dtype(eqn, rule)
        if loop.kind not in "fbiu":
            return None
        ops = [_operand(a, loop) for a in args]
    else:
        return None  # EXCLUDED, an arithmetic op on bools, or not elementwise
    if None in ops:
        return None
    return template.format(*ops, f="" if out == _F64 else "f")


def translatable(eqn) -> bool:
    """Whether ``eqn`` has a CUDA form in a fused kernel (:data:`POLICY`'s filter).

    Example:
        >>> import numpy as np
        >>> from functorch_lite.core import ShapedArray
        >>> from functorch_lite.jit.graph import Eqn, Literal, Var
        >>> from functorch_lite.primitives.elementwise import floor_divide_p, tanh_p
        >>> x = Var(ShapedArray((4,), np.dtype("float32")))
        >>> translatable(Eqn(tanh_p, [x], {}, [Var(x.aval)]))
        True
        >>> translatable(Eqn(floor_divide_p, [x, Literal(2.0)], {}, [Var(x.aval)]))
        False
    """
    if not getattr(eqn.prim, "elementwise", False):
        return eqn.prim.name == "reduce_sum"  # offered only as a float sum over trailing axes
    if eqn.outputs[0].aval.weak_type:
        return False  # a weak value is a Python scalar at run time, never a kernel output
    args = [v if type(v) is Literal else ("x", v.aval) for v in eqn.inputs]
    return _expression(eqn, args) is not None


# Any size and no chunks: fusing saves launches even on tiny arrays.
POLICY = Policy(min_size=1, min_ops=2, chunked=False, accepts=translatable)


def writes_kernels(xp) -> bool:
    """Whether the jit fuses for backend ``xp`` with generated kernels (CuPy does).

    Example:
        >>> import numpy as np
        >>> writes_kernels(np)
        False
    """
    return xp is not np and hasattr(xp, "ElementwiseKernel")


# --------------------------------------------------------------------------------------
# A cluster's kernels
# --------------------------------------------------------------------------------------
class Kernel(NamedTuple):
    """One generated kernel of a cluster: CuPy's constructor arguments and the sub-graph
    variables it reads (``in0, in1, ...``) and writes (``out0, ...``).

    For an ``ElementwiseKernel`` ``body`` is the loop body. For a ``ReductionKernel``
    ``body`` is the preamble defining ``fl_map``, which computes the summed value of one
    element from the inputs; the kernel sums it over ``axes`` in ``reduce_type``.
    """

    kind: str            # "ElementwiseKernel" or "ReductionKernel"
    inputs: tuple
    outputs: tuple
    in_params: str
    out_params: str
    body: str
    axes: tuple = ()
    reduce_type: str = ""

    def build(self, xp):
        """The CuPy kernel object (cached by source; CuPy compiles it at its first call)."""
        key = (xp, self.kind, self.in_params, self.out_params, self.body, self.reduce_type)
        kernel = _kernels.get(key)
        if kernel is None:
            if self.kind == "ElementwiseKernel":
                kernel = xp.ElementwiseKernel(self.in_params, self.out_params, self.body,
                                              "fl_fused")
            else:
                map_expr = f"fl_map({', '.join(f'in{i}' for i in range(len(self.inputs)))})"
                kernel = xp.ReductionKernel(self.in_params, self.out_params, map_expr,
                                            "a + b", "out0 = a", "0", "fl_fused_sum",
                                            reduce_type=self.reduce_type, preamble=self.body)
            _kernels[key] = kernel
        return kernel


_kernels: dict = {}


class _Sum(NamedTuple):
    """A sum of a value the elementwise kernel already writes: a plain ``.sum`` reads it."""

    inputs: tuple
    outputs: tuple
    axes: tuple


def plan(sub):
    """The kernels computing the sub-graph of a fused equation, or None when it cannot run
    as kernels (an equation without a CUDA form, a sum before the end, inputs that are
    all Python scalars, or inputs not broadcasting to the result shape).

    A final ``reduce_sum`` gets its own kernel: a ``ReductionKernel`` recomputing the
    summed chain, or a plain sum when the elementwise kernel writes that value anyway.
    """
    eqns = sub.eqns
    reduce = eqns[-1] if eqns[-1].prim.name == "reduce_sum" else None
    if reduce is not None:
        eqns = eqns[:-1]
    if any(e.prim.name == "reduce_sum" for e in eqns):
        return None
    outputs = [v for v in sub.outvars if reduce is None or v is not reduce.outputs[0]]
    steps = []
    if outputs:
        steps.append(_kernel(sub, eqns, outputs, None))
    if reduce is not None:
        (x,), total = reduce.inputs, reduce.outputs[0]
        axes = reduce.params["axes"]
        if x in outputs or x in sub.invars:
            steps.append(_Sum((x,), (total,), axes))
        else:
            steps.append(_kernel(sub, eqns, [x], reduce))
    return None if None in steps else steps


def _kernel(sub, eqns, outputs, reduce):
    """The kernel computing ``outputs`` (or their sum by ``reduce``), or None."""
    needed, body_eqns = set(outputs), []
    for e in reversed(eqns):
        if any(v in needed for v in e.outputs):
            body_eqns.append(e)
            needed.update(v for v in e.inputs if type(v) is not Literal)
    body_eqns.reverse()
    inputs = [v for v in sub.invars if v in needed]
    shape = outputs[0].aval.shape
    if all(v.aval.weak_type for v in inputs):
        return None  # only Python scalars: CuPy cannot tell the loop size
    try:
        if np.broadcast_shapes(*(v.aval.shape for v in inputs)) != shape:
            return None
    except ValueError:
        return None
    names = {v: f"in{i}" for i, v in enumerate(inputs)}
    lines = []
    for k, e in enumerate(body_eqns):
        args = [v if type(v) is Literal else (names[v], v.aval) for v in e.inputs]
        expr = _expression(e, args)
        if expr is None:
            return None
        out = e.outputs[0]
        names[out] = f"t{k}"
        lines.append(f"{_CTYPE[out.aval.dtype.name]} t{k} = {expr};")
    in_params = ", ".join(f"{v.aval.dtype.name} {names[v]}" for v in inputs)
    if reduce is None:
        lines += [f"out{i} = {names[v]};" for i, v in enumerate(outputs)]
        out_params = ", ".join(f"{v.aval.dtype.name} out{i}" for i, v in enumerate(outputs))
        return Kernel("ElementwiseKernel", tuple(inputs), tuple(outputs), in_params,
                      out_params, "\n".join(lines))
    total = reduce.outputs[0]
    acc = _compute_ctype(total.aval.dtype)
    decl = ", ".join(f"{_CTYPE[v.aval.dtype.name]} {names[v]}" for v in inputs)
    lines.append(f"return {names[outputs[0]]};")
    body = f"__device__ {acc} fl_map({decl}) {{\n" + "".join(
        f"    {line}\n" for line in lines) + "}\n"
    return Kernel("ReductionKernel", tuple(inputs), (total,), in_params,
                  f"{total.aval.dtype.name} out0", body, reduce.params["axes"], acc)


# --------------------------------------------------------------------------------------
# Code generation
# --------------------------------------------------------------------------------------
def emit_kernels(emitter, eqn, ins, outs, indent):
    """Write the calls of a fused equation's kernels (the codegen hook on CuPy).

    Each kernel is a global of the generated function, named for its kind; its CUDA
    source is written above the call as comments, so ``jitted.lower(x).source`` shows it.
    """
    sub = eqn.subgraph
    steps = plan(sub)
    if steps is None:
        return _emit_plain(emitter, sub, ins, outs, indent)
    names = dict(zip(sub.invars, ins))
    names.update(zip(sub.outvars, outs))
    for step in steps:
        args = ", ".join(names[v] for v in step.inputs)
        results = ", ".join(names[v] for v in step.outputs)
        if type(step) is _Sum:
            emitter.emit(f"{results} = {args}.sum(axis={step.axes!r})", indent)
            continue
        emitter.emit(f"# {step.kind}({step.in_params} -> {step.out_params})", indent)
        for line in step.body.splitlines():
            emitter.emit(f"#   {line}", indent)
        fn = emitter.global_(step.build(emitter.xp), step.kind)
        if step.kind == "ReductionKernel":
            args += f", axis={step.axes!r}"
        emitter.emit(f"{results} = {fn}({args})", indent)


def _emit_plain(emitter, sub, ins, outs, indent):
    """A cluster with no kernel form: its equations as ordinary calls."""
    for v, name in zip(sub.invars, ins):
        emitter.bind_name(v, name)
    for e in sub.eqns:
        emitter.emit_eqn(e, indent)
    inner = [emitter.name(v) for e in sub.eqns for v in e.outputs]
    for name, v in zip(outs, sub.outvars):
        emitter.emit(f"{name} = {emitter.name(v)}", indent)
    # The codegen frees values by the names top-level equations read; these are inner.
    emitter.emit(f"del {', '.join(inner)}", indent)


def cuda_sources(fun, *args) -> list[Kernel]:
    """The kernels ``jit(fun)`` generates for its fused clusters when ``args`` live on a
    GPU (``args`` may be NumPy arrays: only their shapes and dtypes matter).

    Example:
        >>> import numpy as np
        >>> import functorch_lite.numpy as fnp
        >>> (kernel,) = cuda_sources(lambda x: fnp.tanh(x) * 2.0 + 1.0,
        ...                          np.ones(3, np.float32))
        >>> kernel.in_params, kernel.out_params
        ('float32 in0', 'float32 out0')
        >>> print(kernel.body)
        float t0 = tanhf(in0);
        float t1 = t0 * 2.0f;
        float t2 = t1 + 1.0f;
        out0 = t2;
    """
    from functorch_lite import tree
    from functorch_lite.core import aval_of
    from functorch_lite.jit.passes import optimize
    from functorch_lite.jit.staging import trace_to_graph

    leaves, treedef = tree.flatten(args)
    graph, _, _ = trace_to_graph(lambda *xs: tree.leaves(fun(*treedef.unflatten(xs))),
                                 [aval_of(x) for x in leaves], name="cuda_sources")
    graph = fuse(optimize(graph), POLICY)
    return [step for e in graph.eqns if e.prim is fused_elementwise_p
            for step in (plan(e.subgraph) or ()) if type(step) is Kernel]
