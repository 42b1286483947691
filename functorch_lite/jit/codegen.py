"""Code generation: a :class:`Graph` becomes straight-line Python source over raw buffers.

Each equation becomes one assignment. An elementwise primitive with no params calls its
backend ufunc by name (``v3 = xp.sin(v1)``); any other primitive calls its own ``impl``
with the params bound in advance (``v4 = _f4(v3)`` where ``_f4 = partial(impl, xp,
axes=(0,))``); a primitive may instead write its own code through an ``emit_code`` hook
(control flow writes ``if``/``while``/``for`` around compiled sub-graphs; a fused
elementwise cluster writes its chunk loop, see ``fusion``). Function-valued
primitives (``custom_vjp_call`` ...) are inlined from their traced body. The source is
compiled once per graph and backend; its text is registered with ``linecache`` so an
error raised inside it shows the generated line.

Buffers (NumPy backend). Every local value is deleted after its last use, so NumPy can
recycle its memory at once. Better still, an elementwise op whose operand dies at that op
writes its result into the operand's buffer (``v7 = xp.multiply(v3, v5, out=v3)``) when
the buffer is the function's own: see :meth:`Emitter._reuse_dying_buffers` for when that
is safe. Inputs donated by the caller (``jit(..., donate_argnums=...)``) count as the
function's own, so a training step can write its new parameters over the old ones.

Value conventions inside generated code (they match what eager ``bind`` sees):
* a non-weak 0-d result is an ndarray (NumPy ufuncs return scalars for 0-d inputs, and
  some impls need ndarray methods), so it is wrapped with ``xp.asarray``;
* a weakly typed 0-d value (computed only from Python scalar arguments) stays a Python
  scalar, so NumPy keeps treating it weakly (NEP 50) downstream.
"""

from __future__ import annotations

import functools
import itertools
import keyword
import linecache
import math

import numpy as np

from functorch_lite.jit import fusion_gpu
from functorch_lite.jit.fusion import fuse
from functorch_lite.jit.graph import Literal, is_effectful
from functorch_lite.primitives.elementwise import zeros_instead_of, zeros_operand

__all__ = ["compile_graph", "run_graph", "Emitter"]

_PY_SCALARS = (bool, int, float, complex)
_EXTREMA = ("maximum", "minimum")
_PY_TYPE_OF_KIND = {"b": "bool", "i": "int", "u": "int", "f": "float", "c": "complex"}
_counter = itertools.count()

# Smallest result (elements) for which an elementwise op takes over a dying operand's
# buffer. Measured on the 2-vCPU Xeon: a chain of 4 float32 ufuncs written in place ran, in
# the time of the same chain making fresh results (each freed by ``del``), 1.03x at 16
# elements, 0.98x at 256, 0.93x at 1K, 0.90x at 4K, 0.78x at 16K, 0.73-0.81x from 64K to
# 512K and 0.57-0.66x at 1e6-4e6 (no page faults, and the buffer is still in cache).
REUSE_MIN_SIZE = 1 << 12
# Primitives whose generated code always returns a new buffer, never a view of an operand.
_FRESH_RESULTS = frozenset({"matmul", "fused_elementwise"})


def _reduction_method(method):
    """``x.sum(axis=...)``; on NumPy ``_sum(x, axis=...)``, the ufunc's ``reduce`` that the
    method calls through ~0.4 us of NumPy's Python wrapper (``_methods._sum``)."""
    def write(x, params, aval, xp):
        axes = params["axes"]
        if method != "sum" and any(aval.shape[a] == 0 for a in axes):
            return None
        if xp is np:
            return f"_{method}({x}, axis={axes!r})"
        return f"{x}.{method}(axis={axes!r})"
    return write


# The reductions' functions in generated NumPy code (see _reduction_method).
_NUMPY_REDUCTIONS = {"_sum": np.add.reduce, "_max": np.maximum.reduce,
                     "_min": np.minimum.reduce}


# Primitives whose impl is one method call of its operand: the code calls the method.
_METHOD_CALLS = {
    "reduce_sum": _reduction_method("sum"),
    "reduce_max": _reduction_method("max"),
    "reduce_min": _reduction_method("min"),
    "reshape": lambda x, params, aval, xp: f"{x}.reshape({params['new_sizes']!r})",
    "transpose": lambda x, params, aval, xp: f"{x}.transpose({params['perm']!r})",
    "stop_gradient": lambda x, params, aval, xp: x,
}


def compile_graph(graph, xp, name="jitted", donated=()):
    """A Python function ``fn(*buffers) -> tuple of buffers`` computing ``graph``.

    ``donated``: positions of inputs whose buffers the function may overwrite (the caller
    hands them over and never reads them again). Cached on the graph per backend module
    and donation. ``fn.source`` holds the generated text.
    """
    key = (xp, donated) if donated else xp
    fn = graph.compiled_cache.get(key)
    if fn is None:
        fn = graph.compiled_cache[key] = Emitter(xp).compile(graph, name, donated)
    return fn


def run_graph(graph, xp, bufs, name="sub"):
    """Run ``graph`` on buffers outside any trace (a primitive's eager impl).

    The first run interprets the graph equation by equation; later runs compile it.
    Most graphs that run once (the branches of a ``cond`` traced under an eager ``grad``)
    never pay for code generation, and graphs that run often do not pay for dispatch.
    """
    fn = graph.compiled_cache.get(xp)
    if fn is None:
        graph.runs += 1
        if graph.runs == 1:
            from functorch_lite.core import Array, trace_scope
            from functorch_lite.jit.staging import eval_graph

            with trace_scope(None):
                outs = eval_graph(graph, [b if type(b) in _PY_SCALARS else Array(b)
                                          for b in bufs])
            return tuple(o._buf if type(o) is Array else o for o in outs)
        fn = compile_graph(graph, xp, name)
    return fn(*bufs)


class Emitter:
    """Writes the source of one generated function (and the globals it refers to)."""

    def __init__(self, xp):
        self.xp = xp
        self.globals = {"xp": xp, "_as0": xp.asarray}
        if xp is np:
            self.globals.update(_NUMPY_REDUCTIONS)
        self.lines = []
        self._names = {}
        self._fresh = itertools.count()

    # --- names -----------------------------------------------------------------------
    def fresh(self, prefix="v"):
        return f"{prefix}{next(self._fresh)}"

    def name(self, v):
        """The Python expression for a variable or literal."""
        if type(v) is Literal:
            return self.literal(v.value)
        return self._names[v]

    def bind_name(self, v, name):
        self._names[v] = name

    def define(self, v):
        name = self._names[v] = self.fresh()
        return name

    def literal(self, value):
        if type(value) in (bool, int) or (type(value) is float and math.isfinite(value)):
            return repr(value)
        return self.global_(value, "lit")

    def global_(self, value, prefix="g"):
        """A name in the generated code's globals bound to ``value``."""
        name = self.fresh("_" + prefix)
        self.globals[name] = value
        return name

    def function_for(self, graph, name="sub"):
        """A global name for ``graph`` compiled on this backend (for control flow)."""
        return self.global_(compile_graph(graph, self.xp, name), name)

    def emit(self, line, indent=1):
        self.lines.append("    " * indent + line)

    # --- whole functions -------------------------------------------------------------
    def compile(self, graph, name, donated=()):
        if self.xp is np:
            graph = fuse(graph)
        elif fusion_gpu.writes_kernels(self.xp):  # CuPy: one CUDA kernel per cluster
            graph = fuse(graph, fusion_gpu.POLICY)
        params = [self.define(v) for v in graph.invars]
        self.emit_body(graph, track_liveness=True)
        outs = [self.name(v) for v in graph.outvars]
        if self.xp is np:
            self._reuse_dying_buffers(set(outs), {params[i] for i in donated})
        self._free_dead_values(set(outs))
        self.emit(f"return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
        fname = "".join(c if c.isalnum() else "_" for c in name)
        if not fname.isidentifier() or keyword.iskeyword(fname):
            fname = "_" + fname
        while fname in self.globals:  # a function named like a global it calls (xp, _sum)
            fname += "_"
        source = f"def {fname}({', '.join(params)}):\n" + "\n".join(self.lines) + "\n"
        filename = f"<functorch_lite.jit {fname} #{next(_counter)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = self.globals
        exec(compile(source, filename, "exec"), namespace)
        fn = namespace[fname]
        fn.source = source
        fn.graph = graph  # after fusion: what ``lower`` shows
        return fn

    def emit_body(self, graph, indent=1, track_liveness=False):
        """Emit ``graph``'s equations; its inputs must already have names.

        ``track_liveness``: remember, per equation, the lines it emitted and the local names
        it reads and defines (a :class:`_Block`), for the buffer planning that follows.
        """
        for v, value in zip(graph.constvars, graph.consts):
            buf = value._buf
            if self.xp is not np and type(buf) is np.ndarray:
                buf = self.xp.asarray(buf)
            self.bind_name(v, self.global_(buf, "c"))
        if track_liveness:  # an inlined body (custom rules) belongs to its caller's block
            self._blocks = []
        for eqn in graph.eqns:
            start = len(self.lines)
            reads = [self.name(v) for v in eqn.inputs if type(v) is not Literal]
            self.emit_eqn(eqn, indent)
            if track_liveness:
                outs = [self.name(v) for v in eqn.outputs]
                self._blocks.append(_Block(start, len(self.lines), eqn, reads, outs))

    def _reuse_dying_buffers(self, keep, donated):
        """Rewrite ``v7 = xp.multiply(v3, v5)`` as ``v7 = xp.multiply(v3, v5, out=v3)``
        where that cannot change what the program computes.

        An operand's buffer is taken only when all of these hold:
        * the op is a plain ufunc call with one result, of the operand's shape and dtype,
          and at least :data:`REUSE_MIN_SIZE` elements;
        * the buffer is *owned*: a new array made by an earlier equation of this function
          (a ufunc result, a matmul, a fused cluster's output) or a donated input; never a
          caller's input, a constant or a view (reshape, transpose, broadcast_to and
          indexing may return views of their operand, and so may control flow);
        * no one else can see it afterwards: the value is not returned, not passed to an
          effectful primitive, and every value that may share its memory (a view of it, or
          the result of any op that may return a view of it) is dead before this op, so
          no later read sees the change and NumPy needs no copy of an overlapping operand.
        """
        last = {}
        for i, block in enumerate(self._blocks):
            for name in block.reads:
                last[name] = i
        pinned = set(keep)
        owned = set(donated)
        memory = _SharedMemory()
        for i, block in enumerate(self._blocks):
            eqn = block.eqn
            if is_effectful(eqn):
                pinned.update(block.reads)
            if self._is_plain_ufunc(eqn) and block.stop - block.start == 1:
                operand = self._dying_operand(block, i, last, pinned, owned, memory)
                if operand is not None:
                    line = self.lines[block.start]
                    self.lines[block.start] = f"{line[:-1]}, out={operand})"
                    memory.join(block.outs + [operand])
                owned.add(block.outs[0])
            elif eqn.prim.name in _FRESH_RESULTS:
                owned.update(block.outs)
            else:
                memory.join(block.outs + block.reads)

    @staticmethod
    def _dying_operand(block, i, last, pinned, owned, memory):
        """The operand of ``block`` (equation ``i``) whose buffer its result may take."""
        out = block.eqn.outputs[0].aval
        if out.size < REUSE_MIN_SIZE:
            return None
        operands = [v for v in block.eqn.inputs if type(v) is not Literal]
        for v, name in zip(operands, block.reads):
            if (name in owned and last[name] == i and name not in pinned
                    and v.aval.shape == out.shape and v.aval.dtype == out.dtype
                    and all(other == name or (last.get(other, -1) < i and other not in pinned)
                            for other in memory.group(name))):
                return name
        return None

    def _free_dead_values(self, keep):
        """Insert ``del`` after each local value's last use.

        Without it every intermediate stays alive until the function returns: a training
        step then holds all its temporaries at once, so each new array takes fresh memory
        (page faults, cold cache) instead of a block NumPy just freed; measured ~1.4x slower
        than eager on an MLP step.
        """
        last = {}
        for i, block in enumerate(self._blocks):
            for name in block.reads:
                if name.startswith("v") and name not in keep:
                    last[name] = i
        dead_after = {}
        for name, i in last.items():
            dead_after.setdefault(i, []).append(name)
        lines = self.lines[:self._blocks[0].start] if self._blocks else list(self.lines)
        for i, block in enumerate(self._blocks):
            lines.extend(self.lines[block.start:block.stop])
            if i in dead_after and block.stop > block.start:  # a function body: indent 1
                lines.append(f"    del {', '.join(sorted(dead_after[i]))}")
        if self._blocks:
            lines.extend(self.lines[self._blocks[-1].stop:])
        self.lines = lines

    def emit_eqn(self, eqn, indent=1):
        prim = eqn.prim
        ins = [self.name(v) for v in eqn.inputs]
        hook = getattr(prim, "emit_code", None)
        if hook is not None:
            outs = [self.define(v) for v in eqn.outputs]
            return hook(self, eqn, ins, outs, indent)
        if eqn.subgraph is not None:
            return self._inline(eqn, ins, indent)
        if prim.name in _EXTREMA:
            ins = self._zeros_for_zero_literal(eqn, ins)
        call = self._method_call(eqn, ins) or self._call(prim, eqn.params, ins)
        outs = [self.define(v) for v in eqn.outputs]
        if not prim.multiple_results:
            self.emit(f"{outs[0]} = {self.normalize(call, eqn.outputs[0].aval)}", indent)
            return
        if not outs:
            self.emit(call, indent)
            return
        self.emit(f"{', '.join(outs)}{',' if len(outs) == 1 else ''} = {call}", indent)
        for name, v in zip(outs, eqn.outputs):
            fixed = self.normalize(name, v.aval)
            if fixed != name:
                self.emit(f"{name} = {fixed}", indent)

    def _zeros_for_zero_literal(self, eqn, ins):
        """maximum/minimum of a big float array and a literal +0: the literal becomes a
        constant array of zeros, as the eager impl does (NumPy's array-scalar loop for
        these is not vectorized; see ``primitives.elementwise.zeros_operand``)."""
        a, b = eqn.inputs
        for lit, arr, i in ((b, a, 1), (a, b, 0)):
            if type(lit) is Literal and type(arr) is not Literal:
                zeros = self.zeros_for(arr.aval, lit.value)
                if zeros is not None:
                    ins = list(ins)
                    ins[i] = zeros
                break
        return ins

    def zeros_for(self, aval, value):
        """The name of a constant array of zeros to pass instead of the scalar ``value``
        against an array of ``aval`` in maximum/minimum, or None (not a +0, not NumPy, or
        an array too small or too big for it to pay)."""
        if self.xp is np and zeros_instead_of(aval.dtype, aval.ndim, aval.size, value):
            return self.global_(zeros_operand(aval.shape, aval.dtype), "zeros")
        return None

    def _call(self, prim, params, ins):
        if self._is_backend_call(prim, params):
            return f"xp.{prim.emit}({', '.join(ins)})"
        fn = functools.partial(prim.impl, self.xp, **params)
        return f"{self.global_(fn, prim.name)}({', '.join(ins)})"

    def _method_call(self, eqn, ins):
        """``v5 = v4.sum(axis=(1,))`` for what the impl would do by the same method call
        (reductions, reshape, transpose; stop_gradient is its operand): no call of a bound
        impl, ~0.3-1 us less per equation. None when the operand may be a Python scalar
        (weakly typed 0-d) or a literal, or a max/min reduces an empty axis (whose impl
        raises the clearer error)."""
        write = _METHOD_CALLS.get(eqn.prim.name)
        if write is None or type(eqn.inputs[0]) is Literal or eqn.inputs[0].aval.weak_type:
            return None
        return write(ins[0], eqn.params, eqn.inputs[0].aval, self.xp)

    def _is_backend_call(self, prim, params):
        """Whether ``prim`` is written as a direct call of the backend function it names
        (``xp.sin(v1)``): an elementwise primitive without params."""
        emit = prim.emit
        return (not params and type(emit) is str and getattr(prim, "elementwise", False)
                and callable(getattr(self.xp, emit, None)))

    def _is_plain_ufunc(self, eqn):
        """Whether ``eqn`` is written as one call of a one-result ufunc (takes ``out=``)."""
        prim = eqn.prim
        if (getattr(prim, "emit_code", None) is not None or eqn.subgraph is not None
                or prim.multiple_results or not self._is_backend_call(prim, eqn.params)):
            return False
        ufunc = getattr(self.xp, prim.emit)
        return isinstance(ufunc, np.ufunc) and ufunc.nout == 1

    def _inline(self, eqn, ins, indent):
        sub = eqn.subgraph
        for v, name in zip(sub.invars, ins):
            self.bind_name(v, name)
        self.emit_body(sub, indent)
        for v, out in zip(eqn.outputs, sub.outvars):
            self.bind_name(v, self.name(out))

    @staticmethod
    def normalize(expr, aval):
        """``expr`` wrapped so a 0-d value follows the conventions in the module doc."""
        if aval.shape != ():
            return expr
        if aval.weak_type:
            return f"{_PY_TYPE_OF_KIND[aval.dtype.kind]}({expr})"
        return f"_as0({expr})"


class _Block:
    """One top-level equation in the generated source: its lines ``[start, stop)`` and the
    local names it reads (operands, in order, literals left out) and defines."""

    __slots__ = ("start", "stop", "eqn", "reads", "outs")

    def __init__(self, start, stop, eqn, reads, outs):
        self.start = start
        self.stop = stop
        self.eqn = eqn
        self.reads = reads
        self.outs = outs


class _SharedMemory:
    """Which local names may share memory: union-find over names (union by size), each
    root holding the members of its group."""

    def __init__(self):
        self._parent = {}
        self._members = {}

    def _root(self, name):
        parent = self._parent
        while name in parent:
            name = parent[name]
        return name

    def group(self, name):
        """The names that may share memory with ``name`` (itself included)."""
        return self._members.get(self._root(name), (name,))

    def join(self, names):
        """Record that all of ``names`` may share memory."""
        roots = sorted(dict.fromkeys(self._root(n) for n in names),
                       key=lambda r: len(self._members.get(r, ())), reverse=True)
        if len(roots) < 2:
            return
        big = roots[0]
        members = self._members.setdefault(big, [big])
        for root in roots[1:]:
            self._parent[root] = big
            members.extend(self._members.pop(root, [root]))
