"""``jit``: trace once per abstract signature, optimize, generate Python, cache.

A call of a jitted function at top level (no transform active) flattens the arguments,
builds the cache key (tree structure; shape, dtype and weak type of each leaf; device;
static arguments; the x64 flag) and runs the generated function for that key, tracing
and compiling it on a miss. That path does no tracing and no per-primitive dispatch.

A call while another transform is active (``grad(jit(f))``, ``vmap(jit(f))``) stages
``f`` just the same (so it behaves as under top-level jit, and the trace is cached), then
evaluates the graph equation by equation on the current trace: the enclosing transform
sees the primitives, custom rules included. Inside a staging trace (``jit`` of a
function that calls a jitted function, or a control-flow body) the function is inlined.

Donation (``donate_argnums``, JAX semantics): at top level, the buffers of the donated
arguments' leaves may be overwritten by the call (an SGD step writes the new parameters
over the old ones), and each donated ``fl.Array`` is invalidated afterwards (any use
raises, ``x.is_deleted()`` is true). A buffer is only handed to the generated code when
the Array is its sole holder (see :func:`_sole_owner`); under an outer transform or
inside another jit, donation is ignored.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys

import numpy as np

from functorch_lite import tree as tree_util
from functorch_lite._traceback import hide_internal_frames
from functorch_lite.config import settings
from functorch_lite.core import (
    Array,
    ShapedArray,
    Tracer,
    _DeletedBuffer,
    asarray_default,
    aval_of,
    ctx,
    to_buffer,
    xp_of,
)
from functorch_lite.jit import fusion_gpu
from functorch_lite.jit.codegen import compile_graph
from functorch_lite.jit.fusion import fuse
from functorch_lite.jit.passes import optimize
from functorch_lite.jit.staging import StagingTrace, eval_graph, trace_to_graph

__all__ = ["jit", "make_graph", "disable_jit", "Jitted", "Lowered", "assert_max_traces"]

_PY_SCALARS = (bool, int, float, complex)
_PY_SCALAR_AVALS = {t: aval_of(t(0)) for t in _PY_SCALARS}


class _JitState:
    __slots__ = ("disabled", "watchers")

    def __init__(self):
        self.disabled = 0        # depth of nested disable_jit() blocks
        self.watchers = []       # active assert_max_traces context managers


state = _JitState()


@contextlib.contextmanager
def disable_jit():
    """Run jitted functions eagerly (as plain Python) inside the block, for debugging.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> f = fl.jit(lambda x: float(x) * 2)   # float() of a traced value fails...
        >>> with fl.disable_jit():
        ...     f(fnp.array(3.0))                 # ...but works eagerly
        6.0
    """
    state.disabled += 1
    try:
        yield
    finally:
        state.disabled -= 1


# --------------------------------------------------------------------------------------
# Arguments: static/dynamic split and cache keys
# --------------------------------------------------------------------------------------
class _Instance:
    """A bound method's ``self`` as part of a cache key: compared by identity."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return type(other) is _Instance and other.obj is self.obj


def _leaf_signature(leaves, fn_name, paths):
    """``(buffers, signature)``: the backend buffers to pass and one key entry per leaf."""
    bufs, sig = [], []
    for i, x in enumerate(leaves):
        t = type(x)
        if t is Array:
            b = x._buf
        elif t is np.ndarray:
            b = x
        elif t in _PY_SCALARS:
            bufs.append(x)
            sig.append(t)
            continue
        else:
            b = _leaf_buffer(x, fn_name, paths, i)
        bufs.append(b)
        if type(b) is np.ndarray:
            sig.append((b.shape, b.dtype))
        else:
            sig.append((b.shape, b.dtype, f"cuda:{b.device.id}"))
    return bufs, tuple(sig)


def _leaf_buffer(x, fn_name, paths, i):
    if isinstance(x, Tracer):
        return to_buffer(x)  # raises the leaked-tracer error
    try:
        b = to_buffer(x)
    except TypeError:
        raise TypeError(
            f"jit({fn_name}): the argument {paths()[i]} is a {type(x).__name__} "
            f"({x!r:.60}), not an array. Pass arrays (or pytrees of arrays), or mark the "
            "argument static with jit(..., static_argnums=...) / static_argnames=...") \
            from None
    return np.asarray(b) if type(b) in _PY_SCALARS else b


def _sig_str(entry):
    if type(entry) is type:
        return _PY_SCALAR_AVALS[entry].str_short()
    return ShapedArray(entry[0], entry[1]).str_short() + (
        f"@{entry[2]}" if len(entry) > 2 else "")


class _Entry:
    """One compiled specialization: the generated function and how to unpack its result.

    ``donated`` lists the leaves in donated positions (Python scalars left out), with the
    error message each invalidated Array will carry; ``variant(leaves)`` is the function
    compiled to overwrite the buffers of those leaves.
    """

    __slots__ = ("fn", "graph", "staged", "xp", "out_tree", "out_avals", "single", "key",
                 "donated", "donated_messages", "build", "all_arrays")

    def __init__(self, fn, staged, xp, out_tree, key):
        self.fn = fn
        self.graph = fn.graph  # after fusion: what ``lower`` shows
        self.staged = staged   # before fusion: what donating variants are compiled from
        self.xp = xp
        self.out_tree = out_tree
        self.out_avals = staged.out_avals
        self.single = out_tree == _LEAF  # the function returns one array
        self.build = out_tree._list_builder()  # wrapped leaves -> the output tree
        # only a 0-d result may come back as a NumPy or Python scalar
        self.all_arrays = all(a.shape != () for a in self.out_avals)
        self.key = key
        self.donated = ()
        self.donated_messages = ()

    def variant(self, donated):
        """The function that may overwrite the buffers of the leaves ``donated``."""
        if not donated:
            return self.fn
        return compile_graph(self.staged, self.xp, self.fn.__name__, donated)

    def unpack(self, outs):
        if self.single:
            b = outs[0]
            return Array(b) if type(b) is np.ndarray else _wrap_output(b, self.out_avals[0])
        if self.all_arrays:
            return self.build(list(map(Array, outs)))
        return self.build([Array(b) if type(b) is np.ndarray else _wrap_output(b, a)
                           for b, a in zip(outs, self.out_avals)])


_LEAF = tree_util.structure(0)


def _array_signature(args, leaves=None):
    """``(signature, buffers)`` of positional arguments that are CPU Arrays or lists,
    tuples, namedtuples and dicts of them, nested (parameters, optimizer states), else
    None: the fast call path.

    The buffers come in ``tree.flatten`` order (dict keys sorted), so they are the compiled
    function's arguments; the signature holds every container's type (and a dict's sorted
    keys) and every array's shape and dtype, so equal signatures mean equal tree structures
    and equal abstract values. A namedtuple counts as a tuple of its class. Anything else
    (registered classes, None, Python scalars, GPU buffers) returns None and takes the
    general path. ``leaves``: a list that receives the Arrays too, in the same order.
    """
    bufs = []
    sig = _container_signature(args, bufs, leaves)  # the arguments are a tuple
    return None if sig is None else (sig, bufs)


def _container_signature(node, bufs, leaves):
    """A list/tuple/dict's part of :func:`_array_signature` (its leaves' buffers appended to
    ``bufs``, and the leaves to ``leaves`` unless None), or None."""
    t = type(node)
    if t is dict:
        keys = tuple(node)
        order = _SORTED_KEYS.get(keys)
        if order is None:
            try:
                order = tuple(sorted(keys))
            except TypeError:  # unsortable keys: tree.flatten explains
                return None
            if len(_SORTED_KEYS) < 1024:
                _SORTED_KEYS[keys] = order
        children = map(node.__getitem__, order)
    elif t is list or t is tuple or tree_util._is_plain_namedtuple(t):  # (optimizer states)
        order = None
        children = node
    else:
        return None
    inner = []
    for x in children:
        if type(x) is Array:
            b = x._buf
            if type(b) is not np.ndarray:
                return None
            inner.append((b.shape, b.dtype))
            bufs.append(b)
            if leaves is not None:
                leaves.append(x)
        else:
            child = _container_signature(x, bufs, leaves)
            if child is None:
                return None
            inner.append(child)
    return (t, order, tuple(inner))


_SORTED_KEYS: dict = {}  # a dict's keys in insertion order -> in sorted order


def _holders(x):
    """How many references to ``x`` exist besides those of this call (the argument is a
    temporary: an element or attribute read, never a local, whose count differs across
    CPython versions)."""
    return sys.getrefcount(x) - _CALL_REFS


_CALL_REFS = 0
_CALL_REFS = _holders(object())  # a temporary that nothing else holds


def _sole_owner(leaf, bufs, i):
    """Whether the donated ``leaf`` (an Array) is the only holder of its buffer ``bufs[i]``,
    a writable contiguous NumPy array, and of the memory it views.

    Anything else holding it would see the buffer change: the same Array or buffer passed
    twice, a view the caller kept (``y = x.T``), the ndarray the Array was made from, a
    constant captured by a compiled function. Reference counts tell: the buffer is held by
    the Array and by the call's buffer list ``bufs``, and the array it views, if any, only
    by the buffer.
    """
    if type(leaf) is not Array or type(bufs[i]) is not np.ndarray or _holders(bufs[i]) != 2:
        return False
    flags = bufs[i].flags
    if not (flags.writeable and (flags.c_contiguous or flags.f_contiguous)):
        return False
    if bufs[i].base is None:
        return True
    return (type(bufs[i].base) is np.ndarray and bufs[i].base.base is None
            and _holders(bufs[i].base) == 1)


def _wrap_output(buf, aval):
    if type(buf) in _PY_SCALARS:
        # A weakly typed result (computed from Python scalars only): like eager mode,
        # Python floats become the default float dtype.
        return Array(asarray_default(buf))
    if isinstance(buf, np.generic):
        return Array(np.asarray(buf))
    return Array(buf)


# --------------------------------------------------------------------------------------
# The jitted function
# --------------------------------------------------------------------------------------
class Jitted:
    """A function compiled per abstract signature. See :func:`jit`.

    Attributes:
        trace_count: how many times the function was traced.
        last_retrace_reason: why the latest retrace happened (``"x: f32[3] -> f32[4]"``),
            or None; ``retrace_reasons`` keeps all of them.
    """

    def __init__(self, fun, static_argnums=(), static_argnames=(), donate_argnums=()):
        if not callable(fun):
            raise TypeError(f"jit expects a function, got {type(fun).__name__}")
        functools.update_wrapper(self, fun)
        self.fun = fun
        self._name = getattr(fun, "__name__", type(fun).__name__)
        nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        names = (static_argnames,) if isinstance(static_argnames, str) else \
            tuple(static_argnames)
        self._param_names = None
        # A static argument may be passed by position or by name: know it both ways.
        for n in nums:
            if self._params is not None and 0 <= n < len(self._params):
                names += (self._params[n],)
        for name in names:
            if self._params is not None and name in self._params:
                nums += (self._params.index(name),)
        self.static_argnums = tuple(sorted(set(nums)))
        self.static_argnames = frozenset(names)
        donate = (donate_argnums,) if isinstance(donate_argnums, int) else donate_argnums
        self.donate_argnums = tuple(sorted(set(donate)))
        # A donated argument may be passed by name too.
        self._donate_argnames = frozenset(
            self._params[n] for n in self.donate_argnums
            if self._params is not None and 0 <= n < len(self._params))
        self._has_static = bool(self.static_argnums or self.static_argnames)
        # (leaf signature, static key, x64) -> [(treedef, entry)]: comparing a treedef
        # with == is cheaper than hashing it on every call.
        self._cache = {}
        # Positional CPU Arrays only (the common call): (signature, x64) -> entry.
        self._array_cache = {}
        self._graph_cache = {}
        self._last_key = None
        self.trace_count = 0
        self.last_retrace_reason = None
        self.retrace_reasons = []
        self.max_traces = None

    def __repr__(self):
        return f"<jitted function {self._name}>"

    @property
    def _params(self):
        """The names of ``fun``'s positional parameters (None when unknown); looked up
        only when needed, since ``inspect.signature`` is slow."""
        if self._param_names is None:
            self._param_names = _positional_names(self.fun) or ()
        return self._param_names or None

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return _BoundJitted(self, obj)

    def clear_cache(self):
        """Forget every compiled specialization (the next call traces again)."""
        self._cache.clear()
        self._array_cache.clear()
        self._graph_cache.clear()
        self._last_key = None

    # --- calling ---------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        try:
            if ctx.trace is not None or state.disabled:
                return self._call_inside_trace(args, kwargs, None)
            if not kwargs and not self._has_static:
                # positional Arrays and containers of them; a donating call also needs the
                # Arrays themselves (sole-owner checks, invalidation)
                leaves = [] if self.donate_argnums else None
                fast = _array_signature(args, leaves)
                if fast is not None:
                    entry = self._array_cache.get((fast[0], settings.x64))
                    if entry is not None:
                        self._last_key = entry.key
                        if entry.donated:
                            return entry.unpack(self._run_donating(entry, fast[1], leaves))
                        return entry.unpack(entry.fn(*fast[1]))
                fast = leaves = None  # references to the buffers would block donation
            entry, bufs, leaves = self._lookup(args, kwargs, None)
            if entry.donated:
                return entry.unpack(self._run_donating(entry, bufs, leaves))
            return entry.unpack(entry.fn(*bufs))
        except Exception as e:  # free until raised (Python 3.11+)
            hide_internal_frames(e)
            raise

    @staticmethod
    def _run_donating(entry, bufs, leaves):
        """Run ``entry`` over the buffers of the donated leaves it solely holds, then
        invalidate every donated Array (also when the call fails: its buffer may be half
        overwritten)."""
        donated = tuple(i for i in entry.donated if _sole_owner(leaves[i], bufs, i))
        fn = entry.variant(donated)
        try:
            return fn(*bufs)
        finally:
            for i, message in zip(entry.donated, entry.donated_messages):
                if type(leaves[i]) is Array:
                    leaves[i]._buf = _DeletedBuffer(message)

    def _lookup(self, args, kwargs, instance):
        """``(entry, buffers, leaves)`` for a call: the compiled specialization (made on a
        miss), the leaves of the dynamic arguments and their buffers."""
        if self._has_static or kwargs or instance is not None:
            dyn, static_key = self._split(args, kwargs, instance)
        else:
            dyn, static_key = args, ()
        leaves, treedef = tree_util.flatten(dyn)
        bufs, sig = _leaf_signature(leaves, self._name, lambda: self._leaf_paths(dyn, static_key))
        x64 = settings.x64
        candidates = self._cache.setdefault((sig, static_key, x64), [])
        entry = next((e for known, e in candidates if known == treedef), None)
        if entry is None:
            entry = self._compile((treedef, sig, static_key, x64), dyn, bufs)
            candidates.append((treedef, entry))
            # the fast path's key describes positional arguments alone
            plain = not static_key and not kwargs and instance is None
            fast = _array_signature(args) if plain else None
            if fast is not None:
                self._array_cache[(fast[0], x64)] = entry
        self._last_key = entry.key
        return entry, bufs, leaves

    def _compile(self, key, dyn, bufs):
        self._note_retrace(key, dyn)
        treedef, sig, static_key, _ = key
        avals = [_PY_SCALAR_AVALS[s] if type(s) is type else ShapedArray(s[0], s[1])
                 for s in sig]
        graph, captured, out_tree = self._trace(treedef, avals, static_key)
        xp = xp_of(bufs)
        entry = _Entry(compile_graph(graph, xp, self._name), graph, xp, out_tree, key)
        if self.donate_argnums:
            self._plan_donation(entry, dyn, static_key, sig)
        return entry

    def _plan_donation(self, entry, dyn, static_key, sig):
        """Which leaves of a call with this signature are donated, and their messages."""
        origins = self._leaf_origins(dyn, static_key)
        donated = [i for i, (origin, _) in enumerate(origins)
                   if type(sig[i]) is not type  # a Python scalar has no buffer
                   and (origin in self.donate_argnums if type(origin) is int
                        else origin in self._donate_argnames)]
        paths = self._leaf_paths(dyn, static_key)
        entry.donated = tuple(donated)
        entry.donated_messages = tuple(
            f"jit({self._name}): the argument {paths[i]} was donated "
            f"(donate_argnums={self.donate_argnums}), so its buffer may now hold one of "
            f"the results and the array was invalidated. Use the values jit({self._name}) "
            "returned instead, or do not donate the argument." for i in donated)

    def _call_inside_trace(self, args, kwargs, instance):
        if state.disabled or isinstance(ctx.trace, StagingTrace):
            if instance is not None:
                args = (instance,) + args
            return self.fun(*args, **kwargs)
        dyn, static_key = self._split(args, kwargs, instance)
        leaves, treedef = tree_util.flatten(dyn)
        avals = tuple(aval_of(x) for x in leaves)
        key = (treedef, avals, static_key, settings.x64)
        hit = self._graph_cache.get(key)
        if hit is None:
            graph, captured, out_tree = self._trace(treedef, avals, static_key)
            if not captured:  # a function closing over outer tracers is traced per call
                self._graph_cache[key] = graph, out_tree
        else:
            (graph, out_tree), captured = hit, []
        return out_tree.unflatten(eval_graph(graph, list(leaves) + list(captured)))

    # --- tracing ---------------------------------------------------------------------
    def _trace(self, treedef, avals, static_key):
        """Stage the function at ``avals``; returns ``(graph, captured, out_tree)``."""
        store = {}

        def flat_fun(*leaves):
            args, kwargs = self._rebuild(treedef.unflatten(leaves), static_key)
            out_leaves, store["out_tree"] = tree_util.flatten(self.fun(*args, **kwargs))
            return out_leaves

        graph, captured, _ = trace_to_graph(flat_fun, avals, name=self._name)
        self.trace_count += 1
        self._check_max_traces()
        return optimize(graph), captured, store["out_tree"]

    def _check_max_traces(self):
        if self.max_traces is not None and self.trace_count > self.max_traces:
            raise AssertionError(self._too_many(self.trace_count, self.max_traces))
        for watcher in state.watchers:
            watcher.count(self)

    def _too_many(self, count, limit):
        why = f"; latest retrace: {self.last_retrace_reason}" if self.last_retrace_reason \
            else ""
        return (f"jit({self._name}) was traced {count} times, more than the {limit} allowed "
                f"by assert_max_traces{why}")

    # --- static arguments ------------------------------------------------------------
    def _split(self, args, kwargs, instance):
        """``(dynamic part, static key)``; the static key holds the static values.

        For a bound method (``instance``), argument numbers count ``self`` as argument 0.
        """
        shift = instance is not None
        nargs = len(args)
        statics = tuple(i - shift if i >= 0 else i + nargs for i in self.static_argnums
                        if -nargs <= i - shift < nargs)
        dyn_args = tuple(a for i, a in enumerate(args) if i not in statics)
        static_pos = tuple((i, type(args[i]), args[i]) for i in statics)
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        static_kw = tuple(sorted((k, type(v), v) for k, v in kwargs.items()
                                 if k in self.static_argnames))
        static_key = (nargs, static_pos, static_kw, None if instance is None else
                      _Instance(instance))
        try:
            hash(static_key)
        except TypeError:
            self._raise_unhashable(static_key)
        return (dyn_args, dyn_kwargs), static_key

    def _raise_unhashable(self, static_key):
        _, static_pos, static_kw, inst = static_key
        named = [(self._arg_name(i, inst), v) for i, _, v in static_pos]
        for label, value in named + [(k, v) for k, _, v in static_kw]:
            try:
                hash(value)
            except TypeError:
                raise TypeError(
                    f"jit({self._name}): the static argument {label!r} has the unhashable "
                    f"type {type(value).__name__} ({value!r:.60}). Static arguments are "
                    "part of the cache key: pass a hashable value (a tuple instead of a "
                    "list, a frozen dataclass), or make the argument dynamic.") from None

    def _arg_name(self, i, instance=None):
        """The parameter name of positional argument ``i`` (after ``self`` if bound)."""
        i += instance is not None
        if self._params is not None and i < len(self._params):
            return self._params[i]
        return f"args[{i}]"

    def _rebuild(self, dyn, static_key):
        """The call's ``(args, kwargs)`` from the dynamic part and the static key."""
        if not static_key:
            return dyn, {}
        (dyn_args, dyn_kwargs), (nargs, static_pos, static_kw, inst) = dyn, static_key
        args, it = [], iter(dyn_args)
        statics = {i: v for i, _, v in static_pos}
        for i in range(nargs):
            args.append(statics[i] if i in statics else next(it))
        kwargs = dict(dyn_kwargs)
        kwargs.update((k, v) for k, _, v in static_kw)
        if inst is not None:
            args.insert(0, inst.obj)
        return args, kwargs

    # --- leaves and their names -----------------------------------------------------
    def _leaf_origins(self, dyn, static_key):
        """Per leaf of the dynamic arguments: ``(argument, key path inside it)``, where
        the argument is its position (counting ``self`` of a bound method) or, for one
        passed by keyword, its name."""
        pairs, _ = tree_util.flatten_with_path(dyn)
        if not static_key:  # dyn is the positional arguments
            return [(path[0].idx, path[1:]) for path, _ in pairs]
        nargs, static_pos, _, inst = static_key
        static_idx = {i for i, _, _ in static_pos}
        positions = [i + (inst is not None) for i in range(nargs) if i not in static_idx]
        return [(positions[path[1].idx] if path[0].idx == 0 else str(path[1].key), path[2:])
                for path, _ in pairs]

    def _leaf_paths(self, dyn, static_key):
        """A readable name per leaf of the dynamic arguments (``x``, ``params['w']``)."""
        return [(self._arg_name(origin) if type(origin) is int else origin)
                + tree_util.keystr(path) for origin, path in self._leaf_origins(dyn, static_key)]

    # --- retrace reasons -------------------------------------------------------------

    def _note_retrace(self, key, dyn):
        old = self._last_key
        if old is None:
            return
        tree_old, sig_old, static_old, x64_old = old
        tree_new, sig_new, static_new, x64_new = key
        changes = []
        if static_old != static_new:
            changes.append(_static_change(self, static_old, static_new))
        if x64_old != x64_new:
            changes.append(f"enable_x64: {x64_old} -> {x64_new}")
        if tree_old != tree_new:
            changes.append(f"argument structure: {tree_old} -> {tree_new}")
        elif sig_old != sig_new:
            try:
                paths = self._leaf_paths(dyn, static_new)
            except Exception:  # pragma: no cover - names are only for the message
                paths = [f"leaf {i}" for i in range(len(sig_new))]
            changes.extend(f"{p}: {_sig_str(a)} -> {_sig_str(b)}"
                           for p, a, b in zip(paths, sig_old, sig_new) if a != b)
        reason = "; ".join(c for c in changes if c) or "a new combination seen before"
        self.last_retrace_reason = reason
        self.retrace_reasons.append(reason)

    # --- inspection ------------------------------------------------------------------
    def lower(self, *args, **kwargs):
        """The optimized graph and the generated source for these arguments."""
        return self._lower(args, kwargs, None)

    def _lower(self, args, kwargs, instance):
        entry, _, leaves = self._lookup(args, kwargs, instance)
        # With donation: the code a call runs when it may overwrite every donated Array.
        fn = entry.variant(tuple(i for i in entry.donated if type(leaves[i]) is Array))
        return Lowered(entry.graph, fn.source)

    def _make_graph(self, args, kwargs, optimized=True):
        dyn, static_key = self._split(args, kwargs, None)
        leaves, treedef = tree_util.flatten(dyn)
        avals = [aval_of(x) for x in leaves]
        store = {}

        def flat_fun(*xs):
            a, k = self._rebuild(treedef.unflatten(xs), static_key)
            out, store["tree"] = tree_util.flatten(self.fun(*a, **k))
            return out

        graph, _, _ = trace_to_graph(flat_fun, avals, name=self._name)
        if not optimized:
            return graph
        graph = optimize(graph)
        bufs = [x._buf if type(x) is Array else x for x in leaves if not isinstance(x, Tracer)]
        xp = xp_of(bufs)
        if xp is np:
            return fuse(graph)
        return fuse(graph, fusion_gpu.POLICY) if fusion_gpu.writes_kernels(xp) else graph


def _static_change(jitted, old, new):
    (_, pos_old, kw_old, inst_old), (_, pos_new, kw_new, inst_new) = old or (
        0, (), (), None), new or (0, (), (), None)
    before = {jitted._arg_name(i, inst_old): v for i, _, v in pos_old} | dict(
        (k, v) for k, _, v in kw_old)
    after = {jitted._arg_name(i, inst_new): v for i, _, v in pos_new} | dict(
        (k, v) for k, _, v in kw_new)
    parts = [f"static {k}: {before.get(k)!r} -> {after.get(k)!r}"
             for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)
             or type(before.get(k)) is not type(after.get(k))]
    if inst_old != inst_new:
        parts.append("a different instance (self)")
    return "; ".join(parts)


def _positional_names(fun):
    try:
        sig = inspect.signature(fun)
    except (TypeError, ValueError):
        return None
    return [p.name for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


class _BoundJitted:
    """A jitted function accessed as a method: ``self`` is a static argument compared by
    identity, so each instance gets its own cache entries (its attributes are read when
    it is traced). A ``self`` that is a registered pytree is a dynamic argument instead."""

    __slots__ = ("jitted", "obj")

    def __init__(self, jitted, obj):
        self.jitted = jitted
        self.obj = obj

    def _is_pytree(self):
        leaves, treedef = tree_util.flatten(self.obj)
        return not (len(leaves) == 1 and leaves[0] is self.obj)

    def __call__(self, *args, **kwargs):
        jitted = self.jitted
        if self._is_pytree():
            return jitted(self.obj, *args, **kwargs)
        try:
            if ctx.trace is not None or state.disabled:
                return jitted._call_inside_trace(args, kwargs, self.obj)
            entry, bufs, leaves = jitted._lookup(args, kwargs, self.obj)
            if entry.donated:
                return entry.unpack(jitted._run_donating(entry, bufs, leaves))
            return entry.unpack(entry.fn(*bufs))
        except Exception as e:
            hide_internal_frames(e)
            raise

    def lower(self, *args, **kwargs):
        return self.jitted._lower(args, kwargs, self.obj)

    def __getattr__(self, name):
        return getattr(self.jitted, name)


class Lowered:
    """What ``jitted.lower(*args)`` returns: the optimized graph and the generated source.

    ``str(lowered)`` prints the graph; ``lowered.source`` is the Python code that runs.
    """

    def __init__(self, graph, source):
        self.graph = graph
        self.source = source

    def as_text(self):
        return str(self.graph)

    def __str__(self):
        return str(self.graph)

    def __repr__(self):
        return f"Lowered(\n{self.graph}\n)"


def jit(fun=None, *, static_argnums=(), static_argnames=(), donate_argnums=()):
    """Compile ``fun``: trace it once per abstract signature into a graph, optimize the
    graph, generate straight-line Python over backend buffers, and cache it.

    The cache key is the arguments' tree structure, each leaf's shape, dtype and weak
    type (Python scalars are weakly typed and traced, not baked in), the device, the
    static arguments and the x64 flag. Values are not part of the key: Python control flow
    on a traced value raises :class:`~functorch_lite.ConcretizationError`; use
    ``fl.cond``/``fl.while_loop``/``fl.scan``, or make the argument static.

    Args:
        fun: the function (arrays or pytrees of arrays in and out).
        static_argnums, static_argnames: arguments passed to ``fun`` as Python values;
            they must be hashable, and each distinct value traces anew.
        donate_argnums: positions of arguments whose buffers the call may reuse for its
            results (JAX semantics): an SGD step donating its parameters and optimizer
            state writes the new values over the old ones instead of allocating. After a
            top-level call each donated ``fl.Array`` is invalidated: using it raises a
            RuntimeError, ``x.is_deleted()`` is true; use the returned values. A leaf
            that is not an ``fl.Array``, or whose buffer something else also holds (the
            same array passed twice, a view of it), is read but never overwritten.
            Ignored under an outer transform or inside another jit.

    Returns:
        A :class:`Jitted` callable with ``lower(*args)``, ``trace_count``,
        ``last_retrace_reason`` and ``clear_cache()``. Used as a method, ``self`` is a
        static argument compared by identity (one cache entry per instance; attributes
        are read at trace time), unless ``self`` is a registered pytree.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> @fl.jit
        ... def f(x, y):
        ...     return fnp.sum(x * y)
        >>> f(fnp.ones(3), fnp.arange(3.0))
        Array(3., dtype=float32)
        >>> f(fnp.ones(4), fnp.arange(4.0))
        Array(6., dtype=float32)
        >>> f.trace_count, f.last_retrace_reason
        (2, 'x: f32[3] -> f32[4]; y: f32[3] -> f32[4]')
    """
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames,
                                 donate_argnums=donate_argnums)
    return Jitted(fun, static_argnums, static_argnames, donate_argnums)


def make_graph(fun, static_argnums=(), static_argnames=(), optimized=True):
    """A function returning the traced program of ``fun`` at the given arguments.

    Like JAX's ``make_jaxpr``. The graph is shown after the jit's passes (dead code,
    duplicates, constant expressions and trivial ops removed) unless ``optimized=False``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> print(fl.make_graph(lambda x, y: fnp.sum(x * y))(fnp.ones(3), fnp.ones(3)))
        { lambda a:f32[3] b:f32[3]. let
            c:f32[3] = multiply a b
            d:f32[] = reduce_sum[axes=(0,)] c
          in (d,) }
    """
    if isinstance(fun, Jitted):
        static_argnums = tuple(static_argnums) + fun.static_argnums
        static_argnames = tuple(static_argnames) + tuple(fun.static_argnames)
        fun = fun.fun
    jitted = Jitted(fun, static_argnums, static_argnames)

    @functools.wraps(fun)
    def graph_of(*args, **kwargs):
        try:
            return jitted._make_graph(args, kwargs, optimized)
        except Exception as e:
            hide_internal_frames(e)
            raise

    return graph_of


# --------------------------------------------------------------------------------------
# assert_max_traces
# --------------------------------------------------------------------------------------
class assert_max_traces:  # noqa: N801 - used like a function
    """Fail when a function is traced more than ``n`` times.

    * ``@assert_max_traces(n)`` on a jitted function: its ``trace_count`` may not exceed n.
    * ``@assert_max_traces(n)`` on a plain function (under ``jit``): it may not be called
      (traced) more than n times.
    * ``with assert_max_traces(n):``: no jitted function may be traced more than n times
      inside the block.

    Raises:
        AssertionError: naming the function and the latest retrace reason.
    """

    def __init__(self, n):
        self.n = n
        self.counts = {}

    def __call__(self, fun):
        if isinstance(fun, Jitted):
            fun.max_traces = self.n
            return fun
        n, calls = self.n, [0]

        @functools.wraps(fun)
        def counted(*args, **kwargs):
            calls[0] += 1
            if calls[0] > n:
                raise AssertionError(
                    f"{getattr(fun, '__name__', 'function')} was traced {calls[0]} times, "
                    f"more than the {n} allowed by assert_max_traces")
            return fun(*args, **kwargs)

        return counted

    def count(self, jitted):
        c = self.counts[id(jitted)] = self.counts.get(id(jitted), 0) + 1
        if c > self.n:
            raise AssertionError(jitted._too_many(c, self.n))

    def __enter__(self):
        state.watchers.append(self)
        return self

    def __exit__(self, *exc):
        state.watchers.remove(self)
        return False
