"""Elementwise fusion on CPU: chains of elementwise equations run as one loop over chunks.

In eager NumPy every elementwise op is a full pass over memory plus a fresh allocation, so
a chain of ten ops on a large array is memory-bound ten times over. A fused cluster runs
the same ufuncs over row blocks of ~32K elements, each writing into small reused buffers
that stay in cache (``out=``); only the cluster's inputs and outputs touch main memory.
Measured 2-2.5x over eager NumPy on a gelu chain of 1024x1024 float32 (PERF-NOTES.md).

The pass (:func:`fuse`) replaces each cluster with one ``fused_elementwise`` equation whose
``subgraph`` holds the fused equations, printed as ``d:f32[1024,1024] =
fused_elementwise[n=7] a b c``. It runs only when a graph is compiled for NumPy
(:class:`~functorch_lite.jit.codegen.Emitter`) and in ``make_graph`` output, never on the
graphs that outer transforms evaluate: ``grad(jit(f))`` and ``vmap(jit(f))`` interpret the
optimized, unfused graph equation by equation, and ``jit(grad(f))`` traces the gradient
first, so fusion sees the finished program. A fused equation therefore needs no
derivative or batching rule; should one be evaluated anyway (a ``make_graph`` graph run
by :func:`~functorch_lite.jit.staging.eval_graph`), its sub-graph is interpreted.

What is fused:
* equations of elementwise primitives that the codegen writes as a plain backend ufunc
  (``add``, ``tanh``...), ``where`` and ``convert_element_type``, with a float or bool
  result of one shape ``S`` of at least :data:`MIN_SIZE` elements, big enough for at least
  two chunks along the leading axis;
* grouped into maximal connected clusters of at least :data:`MIN_OPS` equations, never
  through a path that leaves the cluster and comes back (that would be a cycle);
* inputs of any shape that broadcasts to ``S``: one whose leading axis is ``S[0]`` is sliced
  per chunk, any other (scalars, literals, leading dim 1 or lower rank) is passed whole;
* a float ``reduce_sum`` over trailing axes of a cluster value ends the cluster: each chunk
  sums its own rows into the result (layernorm's ``sum(c * c)`` never writes ``c * c``);
* values used after the cluster are its outputs, written into full result arrays.

Set ``FL_JIT_FUSION=0`` (or ``fusion.ENABLED = False`` before compiling) to turn it off.
"""

from __future__ import annotations

import os

import numpy as np

from functorch_lite.jit.graph import Eqn, Graph, Literal, Var, is_effectful

__all__ = ["fuse", "fused_elementwise_p", "ENABLED", "MIN_SIZE", "MIN_OPS", "CHUNK"]

ENABLED = os.environ.get("FL_JIT_FUSION", "1") != "0"
# Smallest result (elements) worth fusing: below it, arrays sit in cache anyway and the
# loop's per-chunk overhead is not repaid.
MIN_SIZE = 1 << 16
# Fewest equations worth a loop.
MIN_OPS = 3
# Elements per chunk. On the 2-vCPU Xeon (AVX-512), a 9-op gelu chain on 1024x1024 float32
# ran 0.6-1.3x eager NumPy at 4K, 2.1x at 16K, 2.3x at 32K and 2.4x at 64K elements per
# chunk; 32K keeps a cluster's few buffers (128 KiB each in float32) inside L2.
CHUNK = 1 << 15
_ALIGN = 64  # bytes; unaligned out= buffers are up to 2x slower (PERF-NOTES.md)


class _FusedElementwise:
    """The primitive of a fused cluster. Not registered and never bound: a fused equation
    only exists in graphs made for code generation, and ``_inline_only`` makes the graph
    interpreter run its sub-graph instead of binding it."""

    name = "fused_elementwise"
    impl = None
    abstract_eval = None
    jvp = vjp = batch = None
    emit = None
    multiple_results = True
    differentiable = True
    elementwise = False

    def __repr__(self):
        return "<primitive fused_elementwise>"

    @staticmethod
    def emit_code(emitter, eqn, ins, outs, indent):
        _emit_loop(emitter, eqn, ins, outs, indent)


fused_elementwise_p = _FusedElementwise()


# --------------------------------------------------------------------------------------
# Which equations can be fused
# --------------------------------------------------------------------------------------
def _op_kind(eqn):
    """``"ufunc"``, ``"where"``, ``"convert"`` or ``"reduce"`` for an equation the loop can
    run, else None."""
    prim = eqn.prim
    if prim.name == "reduce_sum":
        return "reduce" if _is_row_reduction(eqn) else None
    if not getattr(prim, "elementwise", False) or eqn.subgraph is not None \
            or len(eqn.outputs) != 1 or is_effectful(eqn):
        return None
    if prim.name == "where":
        return "where"
    if prim.name == "convert_element_type":
        return "convert"
    ufunc = getattr(np, prim.emit, None) if type(prim.emit) is str else None
    if eqn.params or not isinstance(ufunc, np.ufunc) or ufunc.nout != 1:
        return None
    return "ufunc"


def _is_row_reduction(eqn):
    """A float sum over trailing axes: each chunk of rows reduces on its own, into the
    same rows of the result (NumPy sums each row the same way, whatever the row count)."""
    (x,), out = eqn.inputs, eqn.outputs[0].aval
    axes = eqn.params["axes"]
    return (type(x) is Var and x.aval.dtype.kind == "f" and out.dtype == x.aval.dtype
            and bool(axes) and 0 not in axes)


def _fusable_shape(eqn):
    """The output shape if ``eqn`` may join a cluster as an elementwise op, else None."""
    if _op_kind(eqn) not in ("ufunc", "where", "convert"):
        return None
    aval = eqn.outputs[0].aval
    shape = aval.shape
    if aval.dtype.kind not in "fb" or aval.size < MIN_SIZE:
        return None
    if shape[0] < 2 * _rows_per_chunk(shape):
        return None  # fewer than two chunks: nothing to gain
    for v in eqn.inputs:
        s = v.aval.shape
        if len(s) > len(shape) or any(a not in (1, b) for a, b in zip(s[::-1], shape[::-1])):
            return None
    return shape


def _rows_per_chunk(shape):
    row = 1
    for d in shape[1:]:
        row *= d
    return max(1, CHUNK // max(row, 1))


# --------------------------------------------------------------------------------------
# Grouping
# --------------------------------------------------------------------------------------
class _Clusters:
    """Union-find over cluster ids, with the equations of each root."""

    def __init__(self):
        self.parent = []
        self.members = []

    def new(self, index):
        self.parent.append(len(self.parent))
        self.members.append([index])
        return len(self.parent) - 1

    def find(self, c):
        while self.parent[c] != c:
            self.parent[c] = self.parent[self.parent[c]]
            c = self.parent[c]
        return c

    def union(self, roots, index):
        root = roots[0]
        for other in roots[1:]:
            self.parent[other] = root
            self.members[root].extend(self.members[other])
            self.members[other] = []
        self.members[root].append(index)
        return root


def _group(graph):
    """``{root: sorted equation indices}`` for the clusters worth fusing.

    Program order, greedily: an equation joins (and merges) the clusters of its inputs
    that have its shape, except those it reaches through an equation outside them:
    ``reach[v]`` holds the clusters ``v`` depends on through such a path; fusing across it
    would make the cluster both an input and a consumer of that outside equation.
    """
    clusters = _Clusters()
    cluster_of = {}   # var -> cluster id of the member equation defining it
    shape_of = {}     # cluster id -> output shape
    reach = {}        # var -> frozenset of cluster ids reached through outside equations
    for i, eqn in enumerate(graph.eqns):
        inputs = [v for v in eqn.inputs if type(v) is Var]
        through = frozenset().union(*(reach.get(v, frozenset()) for v in inputs))
        if _op_kind(eqn) == "reduce" and inputs[0] in cluster_of:
            root = clusters.find(cluster_of[inputs[0]])
            if root not in {clusters.find(c) for c in through} \
                    and shape_of[root] == inputs[0].aval.shape:
                # A reduction ends its cluster: its result is complete only after the
                # loop, so whatever reads it is outside (reach includes the cluster).
                root = clusters.union([root], i)
                reach[eqn.outputs[0]] = through | {root}
                continue
        shape = _fusable_shape(eqn)
        if shape is None:
            outside = through | {cluster_of[v] for v in inputs if v in cluster_of}
            for v in eqn.outputs:
                reach[v] = outside
            continue
        blocked = {clusters.find(c) for c in through}
        roots = []
        for v in inputs:
            c = cluster_of.get(v)
            if c is not None:
                r = clusters.find(c)
                if r not in blocked and shape_of[r] == shape and r not in roots:
                    roots.append(r)
        root = clusters.union(roots, i) if roots else clusters.new(i)
        shape_of[root] = shape
        cluster_of[eqn.outputs[0]] = root
        reach[eqn.outputs[0]] = through
    return {r: sorted(m) for r, m in enumerate(clusters.members) if len(m) >= MIN_OPS}


# --------------------------------------------------------------------------------------
# The pass
# --------------------------------------------------------------------------------------
def fuse(graph: Graph) -> Graph:
    """``graph`` with each elementwise cluster replaced by one ``fused_elementwise``
    equation (the graph itself when nothing is fused or fusion is disabled)."""
    if not ENABLED:
        return graph
    groups = _group(graph)
    if not groups:
        return graph
    member_of = {i: root for root, members in groups.items() for i in members}
    defined_in = {v: member_of[i] for i, e in enumerate(graph.eqns) if i in member_of
                  for v in e.outputs}
    used_outside = {v for v in graph.outvars if type(v) is Var}
    for i, eqn in enumerate(graph.eqns):
        for v in eqn.inputs:
            if type(v) is Var and v in defined_in and member_of.get(i) != defined_in[v]:
                used_outside.add(v)
    fused = {root: _fused_eqn([graph.eqns[i] for i in members], used_outside)
             for root, members in groups.items()}
    # Each cluster is placed where its first member was; an equation that reads one of
    # its outputs but came before its last member moves after it (dependencies first).
    items = []
    for i, eqn in enumerate(graph.eqns):
        root = member_of.get(i)
        if root is None:
            items.append(eqn)
        elif groups[root][0] == i:
            items.append(fused[root])
    return Graph(graph.constvars, graph.consts, graph.invars, _dependency_order(items, graph),
                 graph.outvars)


def _fused_eqn(members, used_outside):
    defined = {v for e in members for v in e.outputs}
    inputs = []
    for e in members:
        for v in e.inputs:
            if type(v) is Var and v not in defined and v not in inputs:
                inputs.append(v)
    outputs = [v for e in members for v in e.outputs if v in used_outside]
    # The sub-graph has its own variables, so it stands alone (printing, typecheck).
    rename = {v: Var(v.aval) for v in inputs}
    rename.update((v, Var(v.aval)) for v in defined)
    sub_eqns = [Eqn(e.prim, [rename.get(v, v) if type(v) is Var else v for v in e.inputs],
                    e.params, [rename[v] for v in e.outputs]) for e in members]
    sub = Graph([], [], [rename[v] for v in inputs], sub_eqns, [rename[v] for v in outputs])
    return Eqn(fused_elementwise_p, inputs, {"n": len(members), "_inline_only": True},
               outputs, subgraph=sub)


def _dependency_order(items, graph):
    """``items`` in their order, each moved after the equations defining its inputs."""
    producer = {v: eqn for eqn in items for v in eqn.outputs}
    done, order = set(), []

    def place(eqn, active):
        if id(eqn) in done:
            return
        assert id(eqn) not in active, "fusion made a cycle"
        active.add(id(eqn))
        for v in eqn.inputs:
            p = producer.get(v) if type(v) is Var else None
            if p is not None:
                place(p, active)
        active.discard(id(eqn))
        done.add(id(eqn))
        order.append(eqn)

    for eqn in items:
        place(eqn, set())
    return order


# --------------------------------------------------------------------------------------
# Code generation
# --------------------------------------------------------------------------------------
def aligned_empty(shape, dtype):
    """An uninitialized C-order array whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize
    for d in shape:
        nbytes *= d
    raw = np.empty(nbytes + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def _emit_loop(emitter, eqn, ins, outs, indent):
    """Write the chunk loop of a fused equation.

    Inside the loop each value is a name for its chunk: a slice of a sliced input, a
    whole broadcast input, a slice of a full result array (cluster outputs) or a reused
    chunk buffer (values that die inside the cluster; a buffer is free again after the
    last use of its value, and may be the output of the very op reading it last).
    """
    sub = eqn.subgraph
    shape = sub.eqns[0].outputs[0].aval.shape
    rows = _rows_per_chunk(shape)
    chunk_shape = (rows,) + tuple(shape[1:])
    emit = emitter.emit
    emitter.globals.setdefault("_aligned_empty", aligned_empty)
    emitter.globals.setdefault("_copyto", np.copyto)

    i, j = emitter.fresh("_i"), emitter.fresh("_j")
    names = {}           # sub-graph var -> name of its chunk inside the loop
    sliced = []          # (chunk name, full name)
    for v, full in zip(sub.invars, ins):
        if v.aval.ndim == len(shape) and v.aval.shape[0] == shape[0]:
            names[v] = emitter.fresh("_x")
            sliced.append((names[v], full))
        else:
            names[v] = full
    results = {}
    for v, name in zip(sub.outvars, outs):
        emit(f"{name} = xp.empty({v.aval.shape!r}, {_dtype_global(emitter, v.aval.dtype)})",
             indent)
        names[v] = emitter.fresh("_o")
        results[names[v]] = name

    last_use = {}
    for k, e in enumerate(sub.eqns):
        for v in e.inputs:
            if type(v) is Var:
                last_use[v] = k
    outputs = set(sub.outvars)
    free = {}            # dtype -> buffer names free for reuse
    buffers = []         # (name, dtype): every chunk buffer, allocated before the loop
    buffer_names = set()
    body = []

    def read(v):
        return emitter.literal(v.value) if type(v) is Literal else names[v]

    def release(k, e):
        """Give back the buffers of values whose last use is equation ``k``."""
        for v in dict.fromkeys(x for x in e.inputs if type(x) is Var):
            if last_use[v] == k and names[v] in buffer_names:
                free.setdefault(v.aval.dtype, []).append(names[v])

    for k, e in enumerate(sub.eqns):
        kind = _op_kind(e)
        out = e.outputs[0]
        args = [read(v) for v in e.inputs]
        if kind == "ufunc":
            release(k, e)  # exact in-place is safe for a ufunc
        if out in outputs:
            target = names[out]
        else:
            pool = free.get(out.aval.dtype)
            if pool:
                target = pool.pop()
            else:
                target = emitter.fresh("_b")
                buffers.append((target, out.aval.dtype))
                buffer_names.add(target)
            names[out] = target
        if kind == "ufunc":
            body.append(f"xp.{e.prim.emit}({', '.join(args)}, out={target})")
        elif kind == "reduce":
            body.append(f"{args[0]}.sum(axis={e.params['axes']!r}, out={target})")
        elif kind == "where":
            cond, x, y = args
            body.append(f"_copyto({target}, {y}, casting='unsafe')")
            body.append(f"_copyto({target}, {x}, casting='unsafe', where={cond})")
        else:
            body.append(f"_copyto({target}, {args[0]}, casting='unsafe')")
        if kind != "ufunc":
            release(k, e)

    for name, dtype in buffers:
        emit(f"{name} = _aligned_empty({chunk_shape!r}, {_dtype_global(emitter, dtype)})",
             indent)
    n = shape[0]
    emit(f"for {i} in range(0, {n}, {rows}):", indent)
    emit(f"{j} = {i} + {rows}", indent + 1)
    if n % rows and buffers:
        emit(f"if {j} > {n}:  # the last, shorter chunk", indent + 1)
        for name, _ in buffers:
            emit(f"{name} = {name}[:{n} - {i}]", indent + 2)
    for chunk, full in sliced:
        emit(f"{chunk} = {full}[{i}:{j}]", indent + 1)
    for chunk, full in results.items():
        emit(f"{chunk} = {full}[{i}:{j}]", indent + 1)
    for line in body:
        emit(line, indent + 1)
    # The chunk views would keep the full arrays alive past their last use.
    temps = [c for c, _ in sliced] + list(results) + [b for b, _ in buffers]
    emit(f"del {', '.join(temps)}", indent)


def _dtype_global(emitter, dtype):
    name = "_dt_" + np.dtype(dtype).name
    emitter.globals.setdefault(name, np.dtype(dtype))
    return name
