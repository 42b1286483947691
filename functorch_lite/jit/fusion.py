"""Elementwise fusion on CPU: chains of elementwise equations run as one loop over row chunks.

In eager NumPy every elementwise op is a full pass over memory plus a fresh allocation, so
a chain of ten ops on a large array is memory-bound ten times over. A fused cluster runs
the same ufuncs over chunks of ~64K elements made of whole rows (a range of the leading
axis), each op writing into small reused buffers that stay in cache (``out=``); only the
cluster's inputs and outputs touch main memory.

Because a chunk holds whole rows, a reduction over the trailing axes (layernorm's mean and
variance, softmax's max and sum) is complete within the chunk, so it may sit anywhere in a
cluster: ``gelu(layernorm(x))`` is one loop that reads ``x`` once and writes the result
once, and so is its gradient. A reduction over the leading axis (the gradient of a bias, a
sum over the batch) is accumulated over the chunks (``acc += chunk.sum(axis=0)``); only
code after the loop can read it.

The pass (:func:`fuse`) replaces each cluster with one ``fused_elementwise`` equation whose
``subgraph`` holds the fused equations, printed as ``d:f32[1024,1024] =
fused_elementwise[n=7] a b c``. It runs only when a graph is compiled for NumPy
(:class:`~functorch_lite.jit.codegen.Emitter`) and in ``make_graph`` output, never on the
graphs that outer transforms evaluate: ``grad(jit(f))`` and ``vmap(jit(f))`` interpret the
optimized, unfused graph equation by equation, and ``jit(grad(f))`` traces the gradient
first, so fusion sees the finished program. A fused equation therefore needs no
derivative or batching rule; should one be evaluated anyway (a ``make_graph`` graph run
by :func:`~functorch_lite.jit.staging.eval_graph`), its sub-graph is interpreted.

What is fused (all values of a cluster share their leading axis, of length ``N``):
* elementwise equations that the codegen writes as a plain backend ufunc (``add``,
  ``tanh``...), ``where`` and ``convert_element_type``, with a float or bool result;
* ``reshape`` and ``broadcast_to`` that keep the leading axis: views of a chunk (a
  broadcast chunk stays unbroadcast; the ufuncs reading it broadcast it themselves);
* float ``sum``/``max``/``min`` over trailing axes, anywhere (each chunk reduces its own
  rows, in the order NumPy uses for the whole array: the same bits); over axes that
  include the leading one, accumulated over the chunks (a different summation order:
  equal up to rounding);
* grouped into maximal connected clusters of at least :data:`MIN_OPS` computing
  equations, two of them over at least :data:`MIN_SIZE` elements, with ``N`` long enough
  for two chunks; never through a path that leaves the cluster and comes back (a cycle);
* inputs: one of its reader's rank with leading axis ``N`` is sliced per chunk, any other
  (scalars, literals, leading dim 1, lower rank) is passed whole;
* values used after the cluster are its outputs, written into full result arrays.

With :data:`THREADS` > 1 (``FL_JIT_THREADS``, else ``OMP_NUM_THREADS``), a loop splits its
rows among threads, each running whole chunks with its own buffers (NumPy releases the GIL
inside a ufunc); partial accumulations are combined in thread order.

Set ``FL_JIT_FUSION=0`` (or ``fusion.ENABLED = False`` before compiling) to turn it off.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from functorch_lite.jit.graph import Eqn, Graph, Literal, Var, is_effectful

__all__ = ["fuse", "fused_elementwise_p", "Policy", "ENABLED", "MIN_SIZE", "MIN_OPS", "CHUNK",
           "THREADS"]

ENABLED = os.environ.get("FL_JIT_FUSION", "1") != "0"
# Smallest op worth fusing (elements it computes, or a reduction reads); a cluster needs two.
# Below it, arrays sit in cache anyway and the loop's per-chunk overhead is not repaid.
MIN_SIZE = 1 << 16
# Fewest computing equations (views aside) worth a loop.
MIN_OPS = 3
# Elements per chunk (whole rows: a wider row gets one row). On the 2-vCPU Xeon (AVX-512), a
# 9-op gelu chain on 1024x1024 float32 ran 0.6-1.3x eager NumPy at 4K, 2.1x at 16K, 2.3x at
# 32K and 2.4x at 64K elements per chunk. On the 2-vCPU EPYC (1 MiB L2 per core, 32 MiB
# L3), gelu(layernorm(x)) forward+backward as one loop took, per call, 1.00 : 0.97 : 0.95
# at 32K : 64K : 128K: fewer chunks save Python calls, and L3 is nearly as fast as L2.
CHUNK = 1 << 16
_ALIGN = 64  # bytes; unaligned out= buffers are up to 2x slower (PERF-NOTES.md)
# Threads a fused loop may split its rows among (each thread runs whole chunks with its own
# buffers): ``FL_JIT_THREADS``, else ``OMP_NUM_THREADS`` (what the benchmarks' ``--threads``
# sets for BLAS), else 1. Read when a loop runs.
def _threads_from_environment():
    """``FL_JIT_THREADS`` or ``OMP_NUM_THREADS`` as a count; OpenMP's nested form ``"4,2"``
    counts its first level, and a value that is not a count means 1 (never an import
    error)."""
    for name in ("FL_JIT_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").split(",")[0].strip()
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                return 1
    return 1


THREADS = _threads_from_environment()


class Policy(NamedTuple):
    """What :func:`fuse` may cluster; the defaults are the CPU chunk loop's. A backend that
    writes its own fused code passes its own (``fusion_gpu.POLICY``: a CUDA kernel pays
    off at any size and has no chunks)."""

    min_size: int = MIN_SIZE    # smallest result (elements) worth fusing
    min_ops: int = MIN_OPS      # fewest equations worth a fused node
    chunked: bool = True        # a result needs two chunks along its leading axis
    accepts: Callable | None = None  # eqn -> bool: whether the backend can write it


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
        if emitter.xp is not np:  # CuPy: generated CUDA kernels instead of a chunk loop
            from functorch_lite.jit.fusion_gpu import emit_kernels
            return emit_kernels(emitter, eqn, ins, outs, indent)
        _emit_loop(emitter, eqn, ins, outs, indent)


fused_elementwise_p = _FusedElementwise()


# --------------------------------------------------------------------------------------
# Which equations can be fused
# --------------------------------------------------------------------------------------
# Reduction primitive -> (ndarray method, ufunc combining two partial results, identity).
_REDUCTIONS = {"reduce_sum": ("sum", "add", 0.0),
               "reduce_max": ("max", "maximum", -np.inf),
               "reduce_min": ("min", "minimum", np.inf)}
_VIEWS = ("reshape", "broadcast")


class _Member(NamedTuple):
    """How an equation takes part in a cluster."""

    kind: str       # ufunc where convert reshape broadcast reduce accumulate
    key: object     # a cluster holds equations of one key: the rows N (or, unchunked, the shape)
    aligned: tuple  # the input variables read chunk by chunk (the others are read whole)
    work: int       # elements the equation computes (a reduction: elements it reads)
    ends: bool      # its result is complete only after the loop: no member may read it


def _op_kind(eqn):
    """What the loop does for ``eqn`` (one of :class:`_Member`'s kinds), or None."""
    if eqn.subgraph is not None or len(eqn.outputs) != 1 or is_effectful(eqn):
        return None
    prim, out = eqn.prim, eqn.outputs[0].aval
    if prim.name in _REDUCTIONS:
        (x,) = eqn.inputs
        axes = eqn.params["axes"]
        if type(x) is not Var or not axes or x.aval.dtype.kind != "f" \
                or out.dtype != x.aval.dtype:
            return None
        return "accumulate" if 0 in axes else "reduce"
    if prim.name in ("reshape", "broadcast_to"):
        x = eqn.inputs[0]
        if type(x) is not Var or not x.aval.ndim or not out.ndim \
                or x.aval.shape[0] != out.shape[0]:
            return None
        if prim.name == "broadcast_to":
            return "broadcast" if x.aval.ndim == out.ndim else None
        return "reshape" if _row_size(out.shape) else None
    if not getattr(prim, "elementwise", False) or out.dtype.kind not in "fb" or not out.ndim:
        return None
    if prim.name == "where":
        return "where"
    if prim.name == "convert_element_type":
        return "convert"
    ufunc = getattr(np, prim.emit, None) if type(prim.emit) is str else None
    if eqn.params or not isinstance(ufunc, np.ufunc) or ufunc.nout != 1:
        return None
    return "ufunc"


def _member(eqn, policy):
    """How ``eqn`` may join a cluster under ``policy``, or None.

    Unchunked (a GPU kernel), a cluster is elementwise equations of one result shape, and
    a reduction over trailing axes may end it.
    """
    kind = _op_kind(eqn)
    if kind is None or (policy.accepts is not None and not policy.accepts(eqn)):
        return None
    out = eqn.outputs[0].aval
    if kind in ("ufunc", "where", "convert"):
        aligned = []
        for v in eqn.inputs:
            s = v.aval.shape
            if len(s) > out.ndim or any(a not in (1, b) for a, b in zip(s[::-1], out.shape[::-1])):
                return None
            if type(v) is Var and (s == out.shape if not policy.chunked else
                                   len(s) == out.ndim and s[0] == out.shape[0]):
                aligned.append(v)
        key = out.shape[0] if policy.chunked else out.shape
        return _Member(kind, key, tuple(aligned), out.size, False)
    x = eqn.inputs[0].aval
    if not policy.chunked:
        if kind != "reduce":
            return None
        return _Member(kind, x.shape, (eqn.inputs[0],), x.size, True)
    work = 0 if kind in _VIEWS else x.size
    return _Member(kind, x.shape[0], (eqn.inputs[0],), work, kind == "accumulate")


def _row_size(shape):
    row = 1
    for d in shape[1:]:
        row *= d
    return row


def _chunk_rows(eqns, members):
    """Rows per chunk: :data:`CHUNK` elements of the widest value the loop slices or makes."""
    row = 1
    for e, m in zip(eqns, members):
        for v in m.aligned:
            row = max(row, _row_size(v.aval.shape))
        if m.kind != "accumulate":
            row = max(row, _row_size(e.outputs[0].aval.shape))
    return max(1, CHUNK // row)


def _worth_fusing(members, rows, policy):
    computing = [m for m in members if m.kind not in _VIEWS]
    big = sum(m.work >= policy.min_size for m in computing)
    if len(computing) < policy.min_ops or big < min(2, len(computing)):
        return False
    return not policy.chunked or members[0].key >= 2 * rows  # fewer than two chunks: no gain


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


def _group(graph, policy):
    """``{root: (sorted equation indices, rows per chunk)}`` for the clusters worth fusing.

    Program order, greedily: an equation joins (and merges) the clusters of its aligned
    inputs that have its key, except those it also depends on through values computed
    outside them: fusing across such a path would make the cluster both an input and a
    consumer of the outside equation. ``needs[c]`` holds the clusters whose results
    cluster ``c`` reads from outside itself; a value computed outside every cluster has
    the clusters it came from in ``sources``; a reduction that ends its cluster gives a
    value of the second kind. Two clusters one of which depends on the other never merge.
    """
    clusters = _Clusters()
    cluster_of = {}   # var -> cluster id, for values a cluster computes chunk by chunk
    key_of = {}       # cluster root -> the key of its members
    needs = {}        # cluster root -> ids of the clusters it reads from outside itself
    sources = {}      # var computed outside the clusters -> ids of the clusters it reads

    def origin(v):
        c = cluster_of.get(v)
        return {c} if c is not None else sources.get(v, set())

    def upstream(ids):
        """The roots of ``ids`` and of every cluster they depend on."""
        seen, stack = set(), [clusters.find(c) for c in ids]
        while stack:
            r = stack.pop()
            if r not in seen:
                seen.add(r)
                stack.extend(clusters.find(c) for c in needs[r])
        return seen

    for i, eqn in enumerate(graph.eqns):
        inputs = [v for v in eqn.inputs if type(v) is Var]
        m = _member(eqn, policy)
        joinable = []
        for v in m.aligned if m is not None else ():
            c = cluster_of.get(v)
            if c is not None and key_of[clusters.find(c)] == m.key \
                    and clusters.find(c) not in joinable:
                joinable.append(clusters.find(c))
        reached = set()
        for v in inputs:
            c = cluster_of.get(v)
            root = clusters.find(c) if c is not None else None
            reached |= needs[root] if root in joinable and v in m.aligned else origin(v)
        reached = upstream(reached)
        roots = [r for r in joinable if r not in reached]
        if m is None or (m.ends and not roots):
            for v in eqn.outputs:
                sources[v] = set().union(*(origin(v) for v in inputs))
            continue
        outside = set().union(*(needs[r] for r in roots))
        for v in inputs:
            c = cluster_of.get(v)
            if c is None or clusters.find(c) not in roots:
                outside |= origin(v)
        root = clusters.union(roots, i) if roots else clusters.new(i)
        needs[root] = outside
        key_of[root] = m.key
        if m.ends:
            sources[eqn.outputs[0]] = {root}
        else:
            cluster_of[eqn.outputs[0]] = root
    groups = {}
    for root, indices in enumerate(clusters.members):
        if not indices:
            continue
        eqns = [graph.eqns[i] for i in sorted(indices)]
        members = [_member(e, policy) for e in eqns]
        rows = _chunk_rows(eqns, members)
        if _worth_fusing(members, rows, policy):
            groups[root] = (sorted(indices), rows)
    return groups


# --------------------------------------------------------------------------------------
# The pass
# --------------------------------------------------------------------------------------
def fuse(graph: Graph, policy: Policy | None = None) -> Graph:
    """``graph`` with each elementwise cluster replaced by one ``fused_elementwise``
    equation (the graph itself when nothing is fused or fusion is disabled); ``policy``
    chooses the clusters (default: the CPU chunk loop's :class:`Policy`).

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> f = lambda x: fnp.tanh(x - fnp.mean(x, axis=-1, keepdims=True)) * 2.0
        >>> graph = fl.make_graph(f, optimized=False)(np.ones((512, 512), np.float32))
        >>> print(fuse(graph))   # the row mean and the ops after it: one loop
        { lambda a:f32[512,512]. let
            b:f32[512,512] = fused_elementwise[n=6] a
          in (b,) }
    """
    if not ENABLED:
        return graph
    groups = _group(graph, policy or Policy())
    if not groups:
        return graph
    member_of = {i: root for root, (members, _) in groups.items() for i in members}
    defined_in = {v: member_of[i] for i, e in enumerate(graph.eqns) if i in member_of
                  for v in e.outputs}
    used_outside = {v for v in graph.outvars if type(v) is Var}
    for i, eqn in enumerate(graph.eqns):
        for v in eqn.inputs:
            if type(v) is Var and v in defined_in and member_of.get(i) != defined_in[v]:
                used_outside.add(v)
    fused = {root: _fused_eqn([graph.eqns[i] for i in members], used_outside, rows)
             for root, (members, rows) in groups.items()}
    # Each cluster is placed where its first member was; an equation that reads one of
    # its outputs but came before its last member moves after it (dependencies first).
    items = []
    for i, eqn in enumerate(graph.eqns):
        root = member_of.get(i)
        if root is None:
            items.append(eqn)
        elif groups[root][0][0] == i:
            items.append(fused[root])
    return Graph(graph.constvars, graph.consts, graph.invars, _dependency_order(items, graph),
                 graph.outvars)


def _fused_eqn(members, used_outside, rows):
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
    params = {"n": len(members), "_rows": rows, "_inline_only": True}
    return Eqn(fused_elementwise_p, inputs, params, outputs, subgraph=sub)


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


class _Accumulation(NamedTuple):
    """An output reduced over the leading axis: accumulated chunk by chunk."""

    partial: str    # a thread's partial result, inside ``run``
    total: str      # the cluster's output
    reduction: str  # the reduction primitive's name
    aval: object


def _emit_loop(emitter, eqn, ins, outs, indent):
    """Write the chunk loop of a fused equation.

    Inside the loop each value is a name for its chunk (rows ``i:j``): a slice of a sliced
    input, a slice of a full result array (cluster outputs), a view (reshape; broadcast_to
    keeps the unbroadcast chunk) or a reused chunk buffer (values that die inside the
    cluster). A buffer is free again after the last use of its value and of the views of
    it, and may be the output of the very ufunc reading it last. Inputs read whole keep
    their full names.
    """
    sub, rows = eqn.subgraph, eqn.params["_rows"]
    plan = [(e, _member(e, Policy())) for e in sub.eqns]
    n = plan[0][1].key
    emit = emitter.emit
    for name, value in (("_aligned_empty", aligned_empty), ("_copyto", np.copyto),
                        ("_broadcast_to", np.broadcast_to), ("_parallel", _parallel)):
        emitter.globals.setdefault(name, value)
    i, j = emitter.fresh("_i"), emitter.fresh("_j")
    whole = dict(zip(sub.invars, ins))
    chunk = {}       # var -> name of its chunk inside the loop
    spread = {}      # var -> trailing shape its (unbroadcast) chunk stands for
    sliced = []      # (chunk name, full name): inputs and outputs sliced per chunk
    for _, m in plan:
        for v in m.aligned:
            if v in whole and v not in chunk:
                chunk[v] = emitter.fresh("_x")
                sliced.append((chunk[v], whole[v]))
    outputs = set(sub.outvars)
    kind_of = {e.outputs[0]: m.kind for e, m in plan}
    accumulated = []   # _Accumulation of each output summed (max, min) over the chunks
    for v, name in zip(sub.outvars, outs):
        dtype = _dtype_global(emitter, v.aval.dtype)
        if kind_of[v] == "accumulate":
            chunk[v] = emitter.fresh("_a")
            accumulated.append(_Accumulation(chunk[v], name, _producer(sub, v).prim.name,
                                             v.aval))
        else:
            emit(f"{name} = xp.empty({v.aval.shape!r}, {dtype})", indent)
            chunk[v] = emitter.fresh("_o")
            sliced.append((chunk[v], name))

    owner, dies = _memory_plan(plan, outputs)
    free = {}          # (trailing shape, dtype) -> names of free chunk buffers
    buffers = []       # (name, trailing shape, dtype): chunk buffers, made before the loop
    temps = []         # (name, shape, dtype): partial results of accumulations
    buffer_of = {}     # owning var -> its buffer's pool key
    released = set()
    body = []

    def read(v, m):
        if type(v) is Literal:
            return emitter.literal(v.value)
        return chunk[v] if v in m.aligned else whole[v]

    def materialized(v):
        name, tail = chunk[v], spread.get(v)
        return name if tail is None else f"_broadcast_to({name}, (len({name}),) + {tail!r})"

    def release(k, e, in_place):
        """Give back the buffers whose last use is equation ``k``. ``in_place``: only those
        read directly (not through a view), which a ufunc may overwrite as it reads."""
        reads = [v for v in e.inputs if type(v) is Var and v in owner]
        for v in reads:
            o = owner[v]
            if o in buffer_of and dies[o] == k and o not in released and (
                    not in_place or all(w is o for w in reads if owner[w] is o)):
                released.add(o)
                free.setdefault(buffer_of[o], []).append(chunk[o])

    def target(out):
        if out in outputs:
            return chunk[out]
        key = (out.aval.shape[1:], out.aval.dtype)
        pool = free.get(key)
        if pool:
            name = pool.pop()
        else:
            name = emitter.fresh("_b")
            buffers.append((name,) + key)
        buffer_of[out] = key
        chunk[out] = name
        return name

    for k, (e, m) in enumerate(plan):
        out, x = e.outputs[0], e.inputs[0]
        if m.kind == "broadcast" and out not in outputs:
            chunk[out], spread[out] = chunk[x], out.aval.shape[1:]
        elif m.kind == "broadcast":
            body.append(f"_copyto({chunk[out]}, {chunk[x]})")
        elif m.kind == "reshape":
            view = f"{materialized(x)}.reshape({(-1,) + out.aval.shape[1:]!r})"
            if out in outputs:
                body.append(f"_copyto({chunk[out]}, {view})")
            else:
                chunk[out] = emitter.fresh("_v")
                body.append(f"{chunk[out]} = {view}")
        elif m.kind == "ufunc":
            release(k, e, in_place=True)
            args = ", ".join(read(v, m) for v in e.inputs)
            body.append(f"xp.{e.prim.emit}({args}, out={target(out)})")
        elif m.kind == "where":
            cond, a, b = (read(v, m) for v in e.inputs)
            name = target(out)
            body.append(f"_copyto({name}, {b}, casting='unsafe')")
            body.append(f"_copyto({name}, {a}, casting='unsafe', where={cond})")
        elif m.kind == "convert":
            body.append(f"_copyto({target(out)}, {read(x, m)}, casting='unsafe')")
        else:
            method, combine, _ = _REDUCTIONS[e.prim.name]
            axes = e.params["axes"]
            if m.kind == "reduce":
                body.append(f"{materialized(x)}.{method}(axis={axes!r}, out={target(out)})")
            else:
                partial = emitter.fresh("_t")
                temps.append((partial, out.aval.shape, out.aval.dtype))
                body.append(f"{materialized(x)}.{method}(axis={axes!r}, out={partial})")
                body.append(f"xp.{combine}({chunk[out]}, {partial}, out={chunk[out]})")
        release(k, e, in_place=False)

    _emit_run(emitter, indent, (n, rows, i, j), sliced, body, buffers, temps, accumulated)



def _memory_plan(plan, outputs):
    """``(owner, dies)``: for each member value, the value whose memory its chunk lies in
    (a view's operand's, else its own), and for each owner, the index of the last equation
    reading it or a view of it: its buffer is free after that one."""
    owner = {}
    for e, m in plan:
        out, src = e.outputs[0], e.inputs[0]
        owner[out] = owner.get(src, src) if m.kind in _VIEWS and out not in outputs else out
    dies = {}
    for k, (e, _) in enumerate(plan):
        for v in e.inputs:
            if type(v) is Var and v in owner:
                dies[owner[v]] = k
    return owner, dies


def _emit_run(emitter, indent, loop, sliced, body, buffers, temps, accumulated):
    """Write ``run(lo, hi)``, the loop over the chunks of rows lo:hi with its own buffers
    and partial accumulations, and its call through :func:`_parallel`, which may split the
    rows among threads; the partial accumulations are then combined in order."""
    n, rows, i, j = loop
    emit = emitter.emit
    run, lo, hi = emitter.fresh("_run"), emitter.fresh("_lo"), emitter.fresh("_hi")
    emit(f"def {run}({lo}, {hi}):", indent)
    for name, tail, dtype in buffers:
        emit(f"{name} = _aligned_empty({(rows,) + tail!r}, {_dtype_global(emitter, dtype)})",
             indent + 1)
    for name, shape, dtype in temps:
        emit(f"{name} = xp.empty({shape!r}, {_dtype_global(emitter, dtype)})", indent + 1)
    for a in accumulated:
        identity = emitter.literal(_REDUCTIONS[a.reduction][2])
        emit(f"{a.partial} = xp.full({a.aval.shape!r}, {identity}, "
             f"{_dtype_global(emitter, a.aval.dtype)})", indent + 1)
    emit(f"for {i} in range({lo}, {hi}, {rows}):", indent + 1)
    emit(f"{j} = {i} + {rows}", indent + 2)
    if n % rows and buffers:
        emit(f"if {j} > {n}:  # the last, shorter chunk", indent + 2)
        for name, _, _ in buffers:
            emit(f"{name} = {name}[:{n} - {i}]", indent + 3)
    for name, full in sliced:
        emit(f"{name} = {full}[{i}:{j}]", indent + 2)
    for line in body:
        emit(line, indent + 2)
    if not accumulated:
        emit(f"_parallel({run}, {n}, {rows})", indent)
        emit(f"del {run}", indent)  # its closure holds the full arrays
        return
    emit(f"return {', '.join(a.partial for a in accumulated)},", indent + 1)
    parts, part = emitter.fresh("_parts"), emitter.fresh("_part")
    emit(f"{parts} = _parallel({run}, {n}, {rows})", indent)
    emit(f"{', '.join(a.total for a in accumulated)}, = {parts}[0]", indent)
    emit(f"for {part} in {parts}[1:]:  # partial results of the other threads, in order",
         indent)
    for k, a in enumerate(accumulated):
        combine = _REDUCTIONS[a.reduction][1]
        emit(f"xp.{combine}({a.total}, {part}[{k}], out={a.total})", indent + 1)
    emit(f"del {run}, {parts}", indent)


def _parallel(run, n, rows):
    """``[run(0, hi1), run(hi1, hi2), ...]``: the rows 0:n in up to :data:`THREADS` parts
    of whole chunks (at least two each), the first part in this thread, the others on
    the pool. NumPy releases the GIL inside each ufunc, so the parts overlap."""
    chunks = -(-n // rows)
    parts = min(THREADS, chunks // 2)
    if parts <= 1:
        return [run(0, n)]
    edges = [min(n, chunks * p // parts * rows) for p in range(parts + 1)]
    pool = _pool(parts - 1)
    futures = [pool.submit(run, a, b) for a, b in zip(edges[1:-1], edges[2:])]
    try:
        first = run(edges[0], edges[1])
    finally:
        results = [f.result() for f in futures]
    return [first] + results


_POOL = [None, 0]  # the worker threads and their count


def _pool(workers):
    pool, size = _POOL
    if pool is None or size < workers:
        if pool is not None:
            pool.shutdown(wait=False)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="fl-fusion")
        _POOL[:] = [pool, workers]
    return pool


def _producer(graph, v):
    return next(e for e in graph.eqns if v in e.outputs)


def _dtype_global(emitter, dtype):
    name = "_dt_" + np.dtype(dtype).name
    emitter.globals.setdefault(name, np.dtype(dtype))
    return name
