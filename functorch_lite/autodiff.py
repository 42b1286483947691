"""Forward mode (a JVP trace) and reverse mode (a tape and a backward pass).

Both are traces in the sense of ``core``: while a transformed function runs, its trace is
current and sees every ``bind``. The JVP trace carries a tangent with each value and applies
each primitive's ``jvp`` rule. The VJP trace records each primitive on a tape together with
its residuals (by default its inputs and output) and, when asked for a cotangent, walks the
tape backwards applying each primitive's ``vjp`` rule.

Rules run with the *parent* trace current, so the arithmetic they do is itself traced by
any enclosing transform: that is all it takes for ``grad(grad(f))``, ``jacfwd(jacrev(f))``
or ``jit(grad(f))`` to work.

Invariants:
* A zero tangent or cotangent is ``None`` (symbolic) and never reaches a rule.
* A value with no derivative (a constant, an integer, the output of a non-differentiable
  primitive) is never wrapped in a tracer: it is returned as its parent-level value.
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from functorch_lite import tree as tree_util
from functorch_lite._compiled_backward import cached_backward
from functorch_lite._traceback import api_boundary, hide_internal_frames
from functorch_lite.core import (
    _PY_SCALAR_DTYPES,
    Array,
    Primitive,
    ShapedArray,
    Trace,
    Tracer,
    _explain_failure,
    _wrap_result,
    aval_of,
    bind,
    ctx,
    eager_apply,
    trace_scope,
)
from functorch_lite.primitives.rules import instantiate

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacfwd", "jacrev", "hessian",
           "stop_gradient", "custom_vjp", "custom_jvp", "checkpoint"]


def _is_float(dtype):
    return dtype.kind in "fc"


# --------------------------------------------------------------------------------------
# What forward and reverse mode share: a tracer wraps its primal value, which is concrete
# (or a parent tracer), so Python control flow on it works under grad/jvp.
# --------------------------------------------------------------------------------------
class _PrimalTracer(Tracer):
    __slots__ = ("primal",)

    def underlying_value(self):
        return self.primal

    @property
    def aval(self):
        return aval_of(self.primal)

    # The primal answers these itself (no abstract value built): fnp functions ask often.
    @property
    def shape(self):
        p = self.primal
        return p._buf.shape if type(p) is Array else p.shape

    @property
    def ndim(self):
        p = self.primal
        return p._buf.ndim if type(p) is Array else p.ndim

    @property
    def dtype(self):
        p = self.primal
        return p._buf.dtype if type(p) is Array else p.dtype


class _PrimalTrace(Trace):
    def concrete(self, tracer):
        primal = tracer.primal
        return primal._concrete() if isinstance(primal, Tracer) else primal


# --------------------------------------------------------------------------------------
# Forward mode
# --------------------------------------------------------------------------------------
class JVPTracer(_PrimalTracer):
    __slots__ = ("tangent",)

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent


_PRIMAL_AND_TANGENT = operator.attrgetter("primal", "tangent")


class JVPTrace(_PrimalTrace):
    transform_name = "jvp"

    def process(self, prim, args, params):
        primals, tangents, active = self.split_args(args, JVPTracer, _PRIMAL_AND_TANGENT)
        previous = ctx.trace
        ctx.trace = self.parent
        try:
            if not active or not prim.differentiable:
                return bind(prim, *primals, **params)
            if prim.jvp is None:
                raise NotImplementedError(
                    f"forward-mode differentiation of {prim.name} is not implemented")
            out, t_out = prim.jvp(primals, tangents, **params)
        finally:
            ctx.trace = previous
        if prim.multiple_results:
            return tuple(o if t is None else JVPTracer(self, o, t) for o, t in zip(out, t_out))
        return out if t_out is None else JVPTracer(self, out, t_out)


# --------------------------------------------------------------------------------------
# Reverse mode
# --------------------------------------------------------------------------------------
_new_object = object.__new__


class VJPTracer(_PrimalTracer):
    __slots__ = ("slot",)

    def __init__(self, trace, primal, slot):
        self._trace = trace
        self.primal = primal
        self.slot = slot


# Arrays at least this big are replaced by their abstract values in a tape entry whose rule
# reads only shapes; smaller ones cost more to describe than to keep.
_SHAPES_ONLY_MIN_SIZE = 4096


def _residuals(prim, out, primals):
    """What a tape entry keeps for ``prim.vjp``: ``(out, primals)``, minus what it does not
    read (see ``Primitive.vjp_reads``)."""
    reads = prim.vjp_reads
    if reads == "values":
        return out, primals
    if reads == "inputs":
        return None, primals
    return None, [aval_of(p) if (type(p) is Array and p._buf.size >= _SHAPES_ONLY_MIN_SIZE
                                 or type(p) is np.ndarray and p.size >= _SHAPES_ONLY_MIN_SIZE)
                  else p for p in primals]


class VJPTrace(_PrimalTrace):
    """Records each differentiable primitive applied to a tracked value.

    A tape entry is ``(prim, params, residuals, in_slots, out_slots, on_buffers)``:
    ``in_slots[i]`` is the cotangent slot of input ``i``, -1 for a constant (input ``i``
    wants a cotangent iff its slot is >= 0), ``out_slots`` the slot of the output (a tuple
    for multiple results). ``residuals`` is ``(out, primals)`` unless the primitive has its own
    ``vjp_fwd``/``vjp_bwd`` pair (custom rules, checkpoint). ``on_buffers``: the residuals
    are NumPy buffers and the rule runs on them (``Primitive.vjp_on_buffers``; eager
    reverse mode on the CPU, with no enclosing transform).
    """

    transform_name = "grad"

    def __init__(self, parent, transform_name="grad"):
        super().__init__(parent)
        self.transform_name = transform_name
        self.tape = []
        self.num_slots = 0

    def new_tracer(self, primal):
        slot = self.num_slots
        self.num_slots += 1
        return VJPTracer(self, primal, slot)

    def process(self, prim, args, params):
        # The hot path of eager reverse mode. It splits its arguments inline (not with
        # Trace.split_args) because it builds the slots and the buffers in the same pass,
        # and when every argument is a CPU array or a Python scalar it calls the impl
        # itself (what eager_apply would do, minus its generality).
        in_slots = []
        bufs = []
        active = False
        for a in args:
            if type(a) is VJPTracer and a._trace is self:
                in_slots.append(a.slot)
                active = True
                a = a.primal
            else:
                if isinstance(a, Tracer):
                    self.check_foreign(a)
                in_slots.append(-1)
            if bufs is not None:
                t = type(a)
                if t is Array:
                    a = a._buf
                    if type(a) is np.ndarray:
                        bufs.append(a)
                    else:
                        bufs = None
                elif t in _PY_SCALAR_DTYPES:  # a weakly typed Python scalar operand
                    bufs.append(a)
                else:
                    bufs = None
        on_buffers = False
        if bufs is not None and active and self.parent is None and prim.vjp_fwd is None \
                and prim.differentiable:
            # the common case: no scope, all buffers on the CPU
            ufunc = prim.np_ufunc
            try:
                out_buf = (ufunc(*bufs) if ufunc is not None and not params
                           else prim.impl(np, *bufs, **params))
            except Exception as e:
                _explain_failure(prim, self._primals(args), params, e)
                raise
            if type(out_buf) is np.ndarray:
                out = Array(out_buf)
            elif isinstance(out_buf, np.generic):  # a 0-d result: NumPy gives a scalar
                out_buf = np.asarray(out_buf)  # (an input is an array: no default dtype)
                out = Array(out_buf)
            else:
                out = _wrap_result(out_buf, self._primals(args))
                out_buf = out._buf if type(out) is Array else None
            if prim.vjp_on_buffers and out_buf is not None and _RULES_ON_BUFFERS:
                on_buffers = True
                reads = prim.vjp_reads
                if reads == "values":  # _residuals, inlined for the common cases
                    residuals = out_buf, bufs
                elif reads == "inputs":
                    residuals = None, bufs
                else:
                    residuals = _residuals(prim, out_buf, bufs)
            else:
                residuals = _residuals(prim, out, self._primals(args))
        else:
            primals = self._primals(args)
            if not active or not prim.differentiable:
                return self._bind_parent(prim, primals, params)
            if self.parent is None and prim.vjp_fwd is None:
                out = eager_apply(prim, primals, params)
                residuals = _residuals(prim, out, primals)
            else:
                previous = ctx.trace
                ctx.trace = self.parent
                try:
                    if prim.vjp_fwd is not None:
                        needs = tuple(s >= 0 for s in in_slots)
                        out, residuals = prim.vjp_fwd(primals, needs, **params)
                    else:
                        out = bind(prim, *primals, **params)
                        residuals = _residuals(prim, out, primals)
                finally:
                    ctx.trace = previous
        if prim.multiple_results:
            tracers, out_slots = [], []
            for o in out:
                if o.dtype.kind in "fc":
                    t = self.new_tracer(o)
                    tracers.append(t)
                    out_slots.append(t.slot)
                else:
                    tracers.append(o)
                    out_slots.append(-1)
            self.tape.append((prim, params, residuals, in_slots, tuple(out_slots), False))
            return tuple(tracers)
        if (out._buf if type(out) is Array else out).dtype.kind not in "fc":
            return out
        slot = self.num_slots
        self.num_slots = slot + 1
        self.tape.append((prim, params, residuals, in_slots, slot, on_buffers))
        tracer = _new_object(VJPTracer)  # VJPTracer(self, out, slot), minus a frame
        tracer._trace = self
        tracer.primal = out
        tracer.slot = slot
        return tracer

    def _primals(self, args):
        return [a.primal if type(a) is VJPTracer and a._trace is self else a for a in args]

    def _bind_parent(self, prim, primals, params):
        previous = ctx.trace
        ctx.trace = self.parent
        try:
            return bind(prim, *primals, **params)
        finally:
            ctx.trace = previous

    def backward(self, seeds, consume=False, wanted=None):
        """Cotangents of every slot, given ``seeds``: a dict slot -> cotangent.

        ``consume``: drop each tape entry (its residuals) once processed, for a pass that
        runs only once (``grad``); ``vjp_fn`` may be called many times. ``wanted``: the
        slots the caller reads, when known; then a tape recorded at top level may run as a
        compiled program (see ``_compiled_backward``), and only those slots are filled.
        """
        if wanted is not None and self.parent is None:
            cts = backward_of_tape(self.tape, self.num_slots, seeds, wanted)
            if cts is not None:
                if consume:
                    self.tape = []
                return cts
        tape = self.tape
        if consume:
            self.tape = []
        return run_tape(tape, self.num_slots, seeds, consume)


def backward_of_tape(tape, num_slots, seeds, wanted):
    """The cotangents of the slots ``wanted`` by the compiled program of ``tape``'s
    structure (``_compiled_backward``), or None: not compilable or not compiled yet (the
    caller then runs the tape). Only at top level: under a transform the rules must run
    on its tracers."""
    if not _COMPILE_BACKWARD or ctx.trace is not None:
        return None
    return cached_backward(tape, num_slots, seeds, wanted, _as_array)


def run_tape(tape, num_slots, seeds, consume=False):
    """Walk ``tape`` backwards from ``seeds`` (slot -> cotangent); cotangents of all slots.

    Each entry's output cotangent is dropped once used, so memory is reused while the pass
    runs; with ``consume`` each entry is dropped from ``tape`` once processed as well.
    Rules run on buffers leave buffers as cotangents; they become Arrays on the way out.
    """
    cts = [None] * num_slots
    for slot, ct in seeds.items():
        cts[slot] = ct if cts[slot] is None else cts[slot] + ct
    any_buffers = False
    for i in range(len(tape) - 1, -1, -1):
        prim, params, residuals, in_slots, out_slots, on_buffers = tape[i]
        if consume:
            tape[i] = None
        if type(out_slots) is tuple:
            ct = tuple(_as_array(cts[s]) if s >= 0 else None for s in out_slots)
            for s in out_slots:
                if s >= 0:
                    cts[s] = None
            if all(c is None for c in ct):
                continue
        else:
            ct = cts[out_slots]
            if ct is None:
                continue
            cts[out_slots] = None
        needs = [s >= 0 for s in in_slots]
        custom_bwd = prim.vjp_bwd
        if custom_bwd is not None:
            in_cts = custom_bwd(_as_array(ct), residuals, needs, **params)
        elif on_buffers:
            any_buffers = True
            if type(ct) is np.ndarray:
                out, bufs = residuals
                in_cts = (prim.vjp(ct, out, bufs, needs, **params) if params else
                          prim.vjp(ct, out, bufs, needs))
            else:
                in_cts = _vjp_on_buffers(prim, ct, residuals, needs, params)
        else:
            out, primals = residuals
            in_cts = prim.vjp(_as_array(ct), out, primals, needs, **params)
        del ct, residuals
        for s, c in zip(in_slots, in_cts):
            if s >= 0 and c is not None:
                if cts[s] is None:
                    cts[s] = c
                elif type(c) is type(cts[s]):
                    cts[s] = cts[s] + c
                else:
                    cts[s] = _as_array(cts[s]) + _as_array(c)
    if any_buffers:  # rules on buffers return ndarrays, NumPy scalars or Arrays
        cts = [c if c is None or type(c) is Array else _as_array(c) for c in cts]
    return cts


# Whether eager reverse mode runs rules on NumPy buffers (``Primitive.vjp_on_buffers``).
# Tests turn it off to check that both ways give the same cotangents.
_RULES_ON_BUFFERS = True

# Whether a tape structure seen before runs as a compiled program (``_compiled_backward``).
# Tests turn it off to compare both ways.
_COMPILE_BACKWARD = True


def _as_array(c):
    """A cotangent as an Array (a rule run on buffers may have left an ndarray or a NumPy
    scalar)."""
    t = type(c)
    if t is np.ndarray:
        return Array(c)
    if isinstance(c, np.generic):
        return Array(np.asarray(c))
    return c


def _vjp_on_buffers(prim, ct, residuals, needs, params):
    """``prim.vjp`` on the NumPy buffers a tape entry kept, for a cotangent that is not an
    ndarray (an Array, a NumPy scalar, or a value from elsewhere). The rule may return
    ndarrays, NumPy scalars or Arrays (from fnp functions): the backward pass takes all."""
    out, bufs = residuals
    t = type(ct)
    buf = ct._buf if t is Array else np.asarray(ct) if isinstance(ct, np.generic) else None
    if type(buf) is not np.ndarray:  # a cotangent from elsewhere: run the rule on Arrays
        out = Array(out) if type(out) is np.ndarray else out
        primals = [Array(b) if type(b) is np.ndarray else b for b in bufs]
        return prim.vjp(_as_array(ct), out, primals, needs, **params)
    return prim.vjp(buf, out, bufs, needs, **params)


# --------------------------------------------------------------------------------------
# Input handling shared by the transforms
# --------------------------------------------------------------------------------------
def _as_value(x):
    """Leaves of differentiated arguments become arrays (Python floats: default dtype)."""
    if isinstance(x, (Array, Tracer)):
        return x
    from functorch_lite import numpy as fnp

    return fnp.asarray(x)


def _check_float_inputs(fn_name, leaves, paths, hint=""):
    """Raise if a differentiated leaf is not floating point. ``paths`` may be a callable
    giving the leaves' key paths: they are only built for the error message."""
    for i, leaf in enumerate(leaves):
        dtype = aval_of(leaf).dtype
        if not _is_float(dtype):
            path = (paths() if callable(paths) else paths)[i]
            raise TypeError(
                f"{fn_name} requires floating-point inputs, but the input at "
                f"{path or 'argument'} has dtype {dtype}. Cast it with .astype(fnp.float32) "
                f"(or float64), or exclude it from argnums.{hint}")


def _fn_name(f):
    return getattr(f, "__name__", type(f).__name__)


# --------------------------------------------------------------------------------------
# vjp / grad / value_and_grad
# --------------------------------------------------------------------------------------
def _vjp(f, primals, has_aux, transform_name, float_check=None):
    """Run ``f`` under a new VJP trace.

    Returns ``(out, vjp_fn, aux, pull_flat)``: ``vjp_fn(cotangent)`` checks the cotangent
    against the output; ``pull_flat(ct_leaves)`` is the unchecked version grad uses.
    ``float_check``: ``(name, argnums)`` to reject non-float inputs with a clear error.
    """
    flat, in_tree = tree_util.flatten(primals)
    flat = [_as_value(x) for x in flat]
    if float_check is not None:
        for i, x in enumerate(flat):
            if x.dtype.kind not in "fc":
                _raise_non_float(float_check, primals, i, x.dtype)
    previous = ctx.trace
    trace = VJPTrace(previous, transform_name)
    tracers = [trace.new_tracer(x) for x in flat]
    ctx.trace = trace
    try:
        result = f(*tree_util.unflatten(in_tree, tracers))
    finally:
        ctx.trace = previous
        trace.invalidate()
    if has_aux:
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(
                f"{transform_name}(..., has_aux=True) expects {_fn_name(f)} to return a pair "
                f"(output, aux), got {type(result).__name__}. Return `loss, aux` or drop "
                "has_aux.")
        out, aux = result
        aux = tree_util.map(lambda v: _unwrap_primal(v, trace), aux)
    else:
        out, aux = result, None
    out_flat, out_tree = tree_util.flatten(out)
    out_primals, out_slots = [], []
    for o in out_flat:
        if type(o) is VJPTracer and o._trace is trace:
            out_primals.append(o.primal)
            out_slots.append(o.slot)
        else:
            out_primals.append(_unwrap_primal(o, trace))
            out_slots.append(-1)

    wanted = [t.slot for t in tracers]

    def pull_flat(ct_flat, consume=False):
        seeds = {}
        for slot, ct in zip(out_slots, ct_flat):
            if slot >= 0:
                seeds[slot] = seeds[slot] + ct if slot in seeds else ct
        cts = (trace.backward(seeds, consume, wanted) if seeds
               else [None] * trace.num_slots)
        grads = [instantiate(cts[t.slot], x)
                 for t, x in zip(tracers, flat)]
        return tree_util.unflatten(in_tree, grads)

    def vjp_fn(cotangent):
        # a public entry point (what vjp returns), made on every call: it hides internal
        # frames itself rather than through api_boundary, which costs ~5 us to apply
        try:
            ct_flat, ct_tree = tree_util.flatten(cotangent)
            if ct_tree != out_tree:
                raise ValueError(f"vjp_fn: the cotangent's structure {ct_tree} does not "
                                 f"match the output's {out_tree}")
            for ct, o in zip(ct_flat, out_primals):
                ct_shape, o_shape = aval_of(ct).shape, aval_of(o).shape
                if ct_shape != o_shape:
                    raise ValueError(f"vjp_fn: cotangent shape {ct_shape} does not match "
                                     f"the output shape {o_shape}")
            return pull_flat(ct_flat)
        except Exception as e:
            hide_internal_frames(e)
            raise

    out_value = tree_util.unflatten(out_tree, out_primals)
    return out_value, vjp_fn, aux, pull_flat


def _raise_non_float(float_check, primals, index, dtype):
    """The error for a non-float differentiated input, naming its path in the arguments."""
    name, argnums = float_check
    (path, _), = [pl for i, pl in enumerate(tree_util.flatten_with_path(primals)[0])
                  if i == index]
    first, rest = path[0], path[1:]
    where = f"args[{argnums[first.idx]}]{tree_util.keystr(rest)}"
    raise TypeError(
        f"{name} requires floating-point inputs, but the input at {where} has dtype {dtype}. "
        "Cast it with .astype(fnp.float32) (or float64), or exclude it from argnums.")


def _unwrap_primal(v, trace):
    if type(v) is VJPTracer and v._trace is trace:
        return v.primal
    return v


@api_boundary
def vjp(f, *primals, has_aux=False):
    """Evaluate ``f(*primals)`` and return a function that pulls cotangents back.

    Args:
        f: a function of arrays (pytrees of arrays) returning arrays (pytrees of arrays).
        *primals: the point to differentiate at.
        has_aux: ``f`` returns ``(output, aux)``; aux is returned, not differentiated.

    Returns:
        ``(out, vjp_fn)`` (or ``(out, vjp_fn, aux)``); ``vjp_fn(cotangent)`` returns a tuple
        with one cotangent per primal, shaped like the primals.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> out, pullback = fl.vjp(lambda x: x * x, fnp.array([1.0, 3.0]))
        >>> pullback(fnp.ones(2))
        (Array([2., 6.], dtype=float32),)
    """
    out, vjp_fn, aux, _ = _vjp(f, primals, has_aux, "vjp")
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def _unit_seed(out, dtype):
    """The cotangent 1 for a scalar output, on the output's device."""
    if type(out) is Array and type(out._buf) is np.ndarray:
        one = _ONES.get(dtype)
        if one is None:
            one = _ONES[dtype] = np.ones((), dtype)
        return Array(one.copy())  # a copy of a cached one: np.ones costs ~1.5 us
    from functorch_lite import numpy as fnp

    return fnp.ones_like(out, dtype)


_ONES: dict = {}  # a 0-d one per dtype, copied for each seed


def _argnums_tuple(fn_name, argnums, nargs):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for n in nums:
        if not isinstance(n, int) or not -nargs <= n < nargs:
            raise ValueError(f"{fn_name}: argnums={argnums!r} is out of range for a call with "
                             f"{nargs} positional argument(s)")
    return single, tuple(n % nargs for n in nums)


def value_and_grad(f, argnums=0, has_aux=False):
    """Make a function that returns ``f``'s value and its gradient w.r.t. ``argnums``.

    ``f`` must return a real scalar (a 0-d float array), or ``(scalar, aux)`` with
    ``has_aux=True``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> value, g = fl.value_and_grad(lambda w: fnp.sum(w ** 2))(fnp.array([1.0, 2.0]))
        >>> value, g
        (Array(5., dtype=float32), Array([2., 4.], dtype=float32))
    """
    return api_boundary(functools.wraps(f)(_value_and_grad(f, argnums, has_aux)))


def _value_and_grad(f, argnums, has_aux):
    """``value_and_grad``'s function, without the API boundary (``grad`` adds its own)."""
    name = f"value_and_grad({_fn_name(f)})"
    argnums_by_count = {}  # number of positional arguments -> (single, nums)

    def value_and_grad_f(*args, **kwargs):
        try:
            single, nums = argnums_by_count[len(args)]
        except KeyError:
            single, nums = argnums_by_count[len(args)] = _argnums_tuple(name, argnums,
                                                                         len(args))
        diff_args = tuple(args[n] for n in nums)

        def partial_f(*dargs):
            full = list(args)
            for n, d in zip(nums, dargs):
                full[n] = d
            return f(*full, **kwargs)

        out, _, aux, pull_flat = _vjp(partial_f, diff_args, has_aux, "grad", (name, nums))
        aval = aval_of(out) if isinstance(out, (Array, Tracer, float, int, np.ndarray)) \
            else None
        if aval is None or aval.shape != ():
            what = (f"shape {aval.shape}" if aval is not None else type(out).__name__)
            raise TypeError(
                f"grad requires {_fn_name(f)} to return a scalar, but it returned {what}. "
                "Reduce the output (e.g. fnp.sum or fnp.mean), or use fl.vjp / fl.jacrev "
                "for non-scalar outputs.")
        if aval.dtype.kind != "f":
            raise TypeError(
                f"grad requires {_fn_name(f)} to return a real floating-point scalar, got "
                f"dtype {aval.dtype}. Cast the output with .astype(fnp.float32).")
        grads = pull_flat([_unit_seed(out, aval.dtype)], consume=True)
        g = grads[0] if single else grads
        return ((out, aux), g) if has_aux else (out, g)

    return value_and_grad_f


def grad(f, argnums=0, has_aux=False):
    """Make a function that returns the gradient of scalar-valued ``f``.

    Args:
        f: a function returning a real scalar (or ``(scalar, aux)`` with ``has_aux``).
        argnums: which positional argument(s) to differentiate (int or tuple of ints);
            each may be a pytree of float arrays.
        has_aux: ``f`` returns ``(scalar, aux)``; the gradient function then returns
            ``(grad, aux)``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.grad(fnp.sin)(0.0)
        Array(1., dtype=float32)
        >>> fl.grad(lambda p: fnp.sum(p["w"] * 3.0))({"w": fnp.ones(2)})
        {'w': Array([3., 3.], dtype=float32)}
    """
    vg = _value_and_grad(f, argnums, has_aux)

    @api_boundary
    @functools.wraps(f)
    def grad_f(*args, **kwargs):
        if has_aux:
            (_, aux), g = vg(*args, **kwargs)
            return g, aux
        return vg(*args, **kwargs)[1]

    return grad_f


# --------------------------------------------------------------------------------------
# jvp
# --------------------------------------------------------------------------------------
@api_boundary
def jvp(f, primals, tangents, has_aux=False):
    """Evaluate ``f`` at ``primals`` and its directional derivative along ``tangents``.

    Args:
        f: a function of arrays (pytrees of arrays).
        primals: a tuple (or list) of arguments.
        tangents: a tuple with the same structure, shapes and dtypes as ``primals``.

    Returns:
        ``(f(*primals), tangent_out)``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.jvp(fnp.sin, (fnp.array(0.0),), (fnp.array(2.0),))
        (Array(0., dtype=float32), Array(2., dtype=float32))
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples (or lists) of arguments, "
                        f"got {type(primals).__name__} and {type(tangents).__name__}")
    flat_p, tree_p = tree_util.flatten(tuple(primals))
    flat_t, tree_t = tree_util.flatten(tuple(tangents))
    if tree_p != tree_t:
        raise ValueError(f"jvp: primals {tree_p} and tangents {tree_t} have different "
                         "structures")
    flat_p = [_as_value(x) for x in flat_p]
    flat_t = [_as_value(x) for x in flat_t]
    for p, t in zip(flat_p, flat_t):
        pa, ta = aval_of(p), aval_of(t)
        if pa.shape != ta.shape or (_is_float(pa.dtype) and pa.dtype != ta.dtype):
            raise ValueError(f"jvp: a tangent {ta.str_short()} does not match its primal "
                             f"{pa.str_short()}; tangents need the primal's shape and dtype")
    trace = JVPTrace(ctx.trace)
    tracers = [JVPTracer(trace, p, t) if _is_float(aval_of(p).dtype) else p
               for p, t in zip(flat_p, flat_t)]
    try:
        with trace_scope(trace):
            result = f(*tree_util.unflatten(tree_p, tracers))
    finally:
        trace.invalidate()
    if has_aux:
        out, aux = result
    else:
        out, aux = result, None
    out_flat, out_tree = tree_util.flatten(out)
    primals_out, tangents_out = [], []
    for o in out_flat:
        if type(o) is JVPTracer and o._trace is trace:
            primals_out.append(o.primal)
            tangents_out.append(o.tangent)
        else:
            primals_out.append(o)
            tangents_out.append(instantiate(None, o))
    result = (tree_util.unflatten(out_tree, primals_out),
              tree_util.unflatten(out_tree, tangents_out))
    if has_aux:
        aux = tree_util.map(lambda v: v.primal if type(v) is JVPTracer and v._trace is trace
                            else v, aux)
        return result + (aux,)
    return result


# --------------------------------------------------------------------------------------
# Jacobians and Hessians
# --------------------------------------------------------------------------------------
def _basis(flat):
    """The identity, split along its columns into leaves shaped like ``flat``.

    Returns one leaf per input with shape ``(total, *leaf.shape)`` where ``total`` is the
    number of scalars in all leaves: row ``i`` is the ``i``-th standard basis direction.
    """

    from functorch_lite.numpy._creation import _placed

    avals = [aval_of(x) for x in flat]
    total = sum(a.size for a in avals)
    leaves, offset = [], 0
    for x, a in zip(flat, avals):
        block = np.zeros((total, a.size), a.dtype)
        block[offset:offset + a.size] = np.eye(a.size, dtype=a.dtype)
        leaves.append(_placed(block.reshape((total,) + a.shape), like=x))  # on x's device
        offset += a.size
    return leaves


def _jacobian_blocks(rows, row_avals, col_avals, rows_first):
    """Cut per-direction results into blocks of shape ``out.shape + in.shape``.

    ``rows[j]`` has shape ``(total, *shape_j)``, stacking one result per basis direction.
    ``rows_first``: the directions index outputs (reverse mode); otherwise inputs.
    Returns ``blocks[out_index][in_index]``.
    """
    from functorch_lite import numpy as fnp

    dir_avals, res_avals = (row_avals, col_avals) if rows_first else (col_avals, row_avals)
    blocks = [[None] * len(col_avals) for _ in row_avals]
    offset = 0
    for d, dir_aval in enumerate(dir_avals):
        n = dir_aval.size
        for r, (res, res_aval) in enumerate(zip(rows, res_avals)):
            piece = fnp.reshape(res[offset:offset + n], dir_aval.shape + res_aval.shape)
            if rows_first:
                blocks[d][r] = piece
            else:
                # piece is in.shape + out.shape: move the input axes to the end
                k = len(dir_aval.shape)
                perm = tuple(range(k, k + len(res_aval.shape))) + tuple(range(k))
                blocks[r][d] = fnp.transpose(piece, perm)
        offset += n
    return blocks


def _nest(blocks, out_tree, in_tree, single):
    per_output = []
    for row in blocks:
        per_input = tree_util.unflatten(in_tree, row)
        per_output.append(per_input[0] if single else per_input)
    return tree_util.unflatten(out_tree, per_output)


def _diff_args(name, args, argnums):
    single, nums = _argnums_tuple(name, argnums, len(args))
    diff = tuple(args[n] for n in nums)
    flat, in_tree = tree_util.flatten(diff)
    flat = [_as_value(x) for x in flat]
    _check_float_inputs(name, flat, lambda: [f"args{tree_util.keystr(p)}" for p, _ in
                                             tree_util.flatten_with_path(diff)[0]])

    def partial_f(f):
        def call(*dargs):
            full = list(args)
            for n, d in zip(nums, dargs):
                full[n] = d
            return f(*full)
        return call

    return single, flat, in_tree, partial_f


def jacfwd(f, argnums=0, has_aux=False):
    """Jacobian of ``f`` by forward mode: ``vmap`` of ``jvp`` over the input basis.

    For an output leaf of shape ``S_out`` and an input leaf of shape ``S_in`` the block has
    shape ``S_out + S_in``; the result nests the output pytree around the input pytree.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.jacfwd(lambda x: x ** 2)(fnp.array([1.0, 2.0]))
        Array([[2., 0.],
               [0., 4.]], dtype=float32)
    """
    from functorch_lite.batching import vmap

    name = f"jacfwd({_fn_name(f)})"

    @api_boundary
    @functools.wraps(f)
    def jacfwd_f(*args):
        single, flat, in_tree, partial = _diff_args(name, args, argnums)
        fun = partial(f)
        primals = tuple(tree_util.unflatten(in_tree, flat))

        def push(*tangent_leaves):
            res = jvp(fun, primals, tree_util.unflatten(in_tree, list(tangent_leaves)),
                      has_aux=has_aux)
            return (res[1], res[2]) if has_aux else (res[1], None)

        t_out, aux = vmap(push, out_axes=(0, None))(*_basis(flat))
        t_flat, out_tree = tree_util.flatten(t_out)
        out_avals = [ShapedArray(aval_of(t).shape[1:], aval_of(t).dtype) for t in t_flat]
        blocks = _jacobian_blocks(t_flat, out_avals, [aval_of(x) for x in flat],
                                  rows_first=False)
        jac = _nest(blocks, out_tree, in_tree, single)
        return (jac, aux) if has_aux else jac

    return jacfwd_f


def jacrev(f, argnums=0, has_aux=False):
    """Jacobian of ``f`` by reverse mode: ``vmap`` of the vjp over the output basis.

    Same layout as :func:`jacfwd` (output shape, then input shape).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.jacrev(lambda x: fnp.sum(x) * x)(fnp.array([1.0, 2.0]))
        Array([[4., 1.],
               [2., 5.]], dtype=float32)
    """
    from functorch_lite.batching import vmap

    name = f"jacrev({_fn_name(f)})"

    @api_boundary
    @functools.wraps(f)
    def jacrev_f(*args):
        single, flat, in_tree, partial = _diff_args(name, args, argnums)
        out, vjp_fn, aux, _ = _vjp(partial(f), tuple(tree_util.unflatten(in_tree, flat)),
                                   has_aux, "jacrev")
        out_flat, out_tree = tree_util.flatten(out)
        out_flat = [_as_value(o) for o in out_flat]

        def pull(*ct_leaves):
            return tree_util.leaves(vjp_fn(tree_util.unflatten(out_tree, list(ct_leaves))))

        rows = vmap(pull)(*_basis(out_flat))
        blocks = _jacobian_blocks(rows, [aval_of(o) for o in out_flat],
                                  [aval_of(x) for x in flat], rows_first=True)
        jac = _nest(blocks, out_tree, in_tree, single)
        return (jac, aux) if has_aux else jac

    return jacrev_f


def hessian(f, argnums=0, has_aux=False):
    """Hessian of scalar ``f``: ``jacfwd(jacrev(f))``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.hessian(lambda x: fnp.sum(x ** 3))(fnp.array([1.0, 2.0]))
        Array([[ 6.,  0.],
               [ 0., 12.]], dtype=float32)
    """
    return jacfwd(jacrev(f, argnums, has_aux), argnums, has_aux)


# --------------------------------------------------------------------------------------
# stop_gradient
# --------------------------------------------------------------------------------------
stop_gradient_p = Primitive(
    "stop_gradient", lambda xp, x: x, lambda x: x, differentiable=False, emit="identity",
    batch=lambda args, dims: (bind(stop_gradient_p, args[0]), dims[0]))


def stop_gradient(x):
    """Identity on values; blocks derivatives (works on pytrees).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.grad(lambda x: x * fl.stop_gradient(x))(3.0)
        Array(3., dtype=float32)
    """
    # Fast paths for one array: eagerly it is the identity, and a value tracked by the
    # innermost reverse trace, with no transform around it, is its untracked primal (what
    # binding would return, minus the tape's bookkeeping).
    t = type(x)
    if t is Array and ctx.trace is None:
        return x
    if t is VJPTracer and x._trace is ctx.trace and x._trace.parent is None:
        return x.primal
    return _stop_gradient_tree(x)


@api_boundary
def _stop_gradient_tree(x):
    return tree_util.map(lambda v: bind(stop_gradient_p, v), x)


# --------------------------------------------------------------------------------------
# Function-valued primitives: custom_vjp, custom_jvp, checkpoint
# --------------------------------------------------------------------------------------
def _call_impl(xp, *bufs, fun, **_):
    out = fun(*[Array(b) for b in bufs])
    return tuple(o._buf if type(o) is Array else o for o in out)


def _flat_fun(f, in_tree, store):
    """``f`` over flat leaves returning flat leaves; the output treedef goes to ``store``."""

    def flat_f(*leaves):
        out = f(*tree_util.unflatten(in_tree, list(leaves)))
        out_flat, out_tree = tree_util.flatten(out)
        store["out_tree"] = out_tree
        return tuple(out_flat)

    return flat_f


def _custom_vjp_jvp(primals, tangents, **params):
    raise TypeError(
        f"cannot apply forward-mode differentiation (jvp, jacfwd, hessian) to the custom_vjp "
        f"function {params['name']}: it only defines a reverse-mode rule. Use jacrev, or "
        "define the function with custom_jvp instead.")


def _custom_vjp_fwd(primals, needs, *, fun, fwd, bwd, name, store):
    out, residuals = fwd(*primals)
    return out, (residuals, out)


def _custom_vjp_bwd(ct, residuals, needs, *, fun, fwd, bwd, name, store):
    residuals, out = residuals
    return bwd(residuals, tuple(instantiate(c, o) for c, o in zip(ct, out)))


# vmap of the function-valued primitives: rebind the same primitive with its functions
# vmapped, so the custom rule (or the rematerialization) survives batching. Batched
# operands move their batch axis to the front; every output is batched along axis 0.
def _moved_to_front(args, dims):
    from functorch_lite import numpy as fnp

    moved = [a if d is None or d == 0 else fnp.moveaxis(a, d, 0) for a, d in zip(args, dims)]
    return moved, tuple(None if d is None else 0 for d in dims)


def _sum_unbatched(cts, in_axes):
    """Cotangents of unbatched (shared) operands are summed over the batch."""
    from functorch_lite import numpy as fnp

    return tuple(c if c is None or ax is not None else fnp.sum(c, axis=0)
                 for c, ax in zip(cts, in_axes))


def _custom_vjp_batch(args, dims, *, fun, fwd, bwd, name, store):
    from functorch_lite.batching import vmap

    moved, in_axes = _moved_to_front(args, dims)
    out = bind(custom_vjp_call_p, *moved, fun=vmap(fun, in_axes=in_axes),
               fwd=vmap(fwd, in_axes=in_axes),
               bwd=lambda res, cts: _sum_unbatched(vmap(bwd)(res, cts), in_axes),
               name=name, store=store)
    return out, 0


custom_vjp_call_p = Primitive("custom_vjp_call", _call_impl, None, jvp=_custom_vjp_jvp,
                              batch=_custom_vjp_batch, multiple_results=True)
custom_vjp_call_p.vjp_fwd = _custom_vjp_fwd
custom_vjp_call_p.vjp_bwd = _custom_vjp_bwd


class custom_vjp:  # noqa: N801 - a decorator, named like JAX's
    """Give a function its own reverse-mode rule.

    ``fwd(*args) -> (out, residuals)``; ``bwd(residuals, cotangent) -> tuple`` with one
    cotangent per argument (``None`` for none).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> @fl.custom_vjp
        ... def clip_gradient(x):
        ...     return x
        >>> clip_gradient.defvjp(lambda x: (x, None),
        ...                      lambda res, g: (fnp.clip(g, -1.0, 1.0),))
        >>> fl.grad(lambda x: 5.0 * clip_gradient(x))(2.0)
        Array(1., dtype=float32)
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd = self.bwd = None
        if nondiff_argnums:
            raise NotImplementedError("custom_vjp(nondiff_argnums=...) is not supported; close "
                                      "over the non-differentiable values instead")

    def defvjp(self, fwd, bwd):
        self.fwd, self.bwd = fwd, bwd

    @api_boundary
    def __call__(self, *args):
        if self.fwd is None:
            raise TypeError(f"custom_vjp function {_fn_name(self.fun)} has no rule yet: call "
                            ".defvjp(fwd, bwd) before using it")
        flat, in_tree = tree_util.flatten(args)
        flat = [_as_value(x) for x in flat]
        store = {}
        fun, fwd, bwd = self.fun, self.fwd, self.bwd

        def flat_fwd(*leaves):
            out, res = fwd(*tree_util.unflatten(in_tree, list(leaves)))
            out_flat, out_tree = tree_util.flatten(out)
            store["out_tree"] = out_tree
            return tuple(out_flat), res

        def flat_bwd(res, cts):
            in_cts = bwd(res, tree_util.unflatten(store["out_tree"], list(cts)))
            if not isinstance(in_cts, (tuple, list)) or len(in_cts) != len(args):
                raise TypeError(
                    f"the bwd rule of custom_vjp function {_fn_name(fun)} must return a tuple "
                    f"with one cotangent per argument ({len(args)}), got {in_cts!r:.100}")
            out = []
            for ct, arg in zip(in_cts, args):
                arg_leaves = tree_util.leaves(arg)
                if ct is None:
                    out.extend([None] * len(arg_leaves))
                else:
                    out.extend(tree_util.leaves(ct))
            return tuple(out)

        out = bind(custom_vjp_call_p, *flat, fun=_flat_fun(fun, in_tree, store),
                   fwd=flat_fwd, bwd=flat_bwd, name=_fn_name(fun), store=store)
        return tree_util.unflatten(store["out_tree"], list(out))


def _custom_jvp_jvp(primals, tangents, *, fun, rule, name, store):
    tangents = [instantiate(t, p) for t, p in zip(tangents, primals)]
    out, t_out = rule(primals, tangents)
    return tuple(out), tuple(t_out)


def _custom_jvp_fwd(primals, needs, *, fun, rule, name, store):
    from functorch_lite.core import bind as bind_

    out = bind_(custom_jvp_call_p, *primals, fun=fun, rule=rule, name=name, store=store)
    return out, (primals, out)


def _custom_jvp_bwd(ct, residuals, needs, *, fun, rule, name, store):
    # The tangent map t -> rule(primals, t)[1] is linear, so its transpose (the vjp) is the
    # reverse-mode derivative of that map, at any point: we take t = 0.
    primals, out = residuals
    zeros = tuple(instantiate(None, p) for p in primals)
    _, pullback = vjp(lambda *ts: tuple(rule(primals, ts)[1]), *zeros)
    return pullback(tuple(instantiate(c, o) for c, o in zip(ct, out)))


def _custom_jvp_batch(args, dims, *, fun, rule, name, store):
    from functorch_lite.batching import vmap

    moved, in_axes = _moved_to_front(args, dims)

    def batched_rule(primals, tangents):
        # A tangent is batched exactly when its primal is (their shapes agree).
        out, t_out = vmap(lambda p, t: tuple(map(tuple, rule(p, t))),
                          in_axes=(in_axes, in_axes))(tuple(primals), tuple(tangents))
        return out, t_out

    out = bind(custom_jvp_call_p, *moved, fun=vmap(fun, in_axes=in_axes), rule=batched_rule,
               name=name, store=store)
    return out, 0


custom_jvp_call_p = Primitive("custom_jvp_call", _call_impl, None, jvp=_custom_jvp_jvp,
                              batch=_custom_jvp_batch, multiple_results=True)
custom_jvp_call_p.vjp_fwd = _custom_jvp_fwd
custom_jvp_call_p.vjp_bwd = _custom_jvp_bwd


class custom_jvp:  # noqa: N801 - a decorator, named like JAX's
    """Give a function its own forward-mode rule (reverse mode is derived from it).

    ``rule(primals, tangents) -> (out, tangent_out)``, with ``primals``/``tangents`` tuples
    holding one entry per argument.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> @fl.custom_jvp
        ... def log1pexp(x):
        ...     return fnp.log1p(fnp.exp(x))
        >>> @log1pexp.defjvp
        ... def _(primals, tangents):
        ...     (x,), (t,) = primals, tangents
        ...     return log1pexp(x), t * (1 - 1 / (1 + fnp.exp(x)))
        >>> fl.grad(log1pexp)(100.0)
        Array(1., dtype=float32)
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.rule = None
        if nondiff_argnums:
            raise NotImplementedError("custom_jvp(nondiff_argnums=...) is not supported; close "
                                      "over the non-differentiable values instead")

    def defjvp(self, rule):
        self.rule = rule
        return rule

    @api_boundary
    def __call__(self, *args):
        if self.rule is None:
            raise TypeError(f"custom_jvp function {_fn_name(self.fun)} has no rule yet: call "
                            ".defjvp(rule) before using it")
        flat, in_tree = tree_util.flatten(args)
        flat = [_as_value(x) for x in flat]
        store = {}
        user_rule = self.rule

        def flat_rule(primals, tangents):
            out, t_out = user_rule(tree_util.unflatten(in_tree, list(primals)),
                                   tree_util.unflatten(in_tree, list(tangents)))
            out_flat, out_tree = tree_util.flatten(out)
            store["out_tree"] = out_tree
            return out_flat, tree_util.leaves(t_out)

        def flat_fun(*leaves):
            out = self.fun(*tree_util.unflatten(in_tree, list(leaves)))
            out_flat, out_tree = tree_util.flatten(out)
            store["out_tree"] = out_tree
            return tuple(out_flat)

        out = bind(custom_jvp_call_p, *flat, fun=flat_fun, rule=flat_rule,
                   name=_fn_name(self.fun), store=store)
        return tree_util.unflatten(store["out_tree"], list(out))


def _checkpoint_jvp(primals, tangents, *, fun, name, store):
    tangents = tuple(instantiate(t, p) for t, p in zip(tangents, primals))
    out, t_out = jvp(fun, tuple(primals), tangents)
    return out, t_out


def _checkpoint_fwd(primals, needs, *, fun, name, store):
    # Run the function without recording anything: only the inputs are kept.
    out = fun(*primals)
    return out, tuple(primals)


def _checkpoint_bwd(ct, primals, needs, *, fun, name, store):
    out, pullback = vjp(fun, *primals)
    ct = tuple(instantiate(c, o) for c, o in zip(ct, out))
    return pullback(ct)


def _checkpoint_batch(args, dims, *, fun, name, store):
    from functorch_lite.batching import vmap

    moved, in_axes = _moved_to_front(args, dims)
    return bind(checkpoint_call_p, *moved, fun=vmap(fun, in_axes=in_axes), name=name,
                store=store), 0


checkpoint_call_p = Primitive("checkpoint_call", _call_impl, None, jvp=_checkpoint_jvp,
                              batch=_checkpoint_batch, multiple_results=True)
checkpoint_call_p.vjp_fwd = _checkpoint_fwd
checkpoint_call_p.vjp_bwd = _checkpoint_bwd


def checkpoint(f):
    """Rematerialize: store only ``f``'s inputs, recompute its forward pass when
    differentiating (trades compute for memory). Values and gradients are unchanged.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> block = fl.checkpoint(lambda x: fnp.tanh(fnp.tanh(x)))
        >>> g = fl.grad(lambda x: fnp.sum(block(x)))(fnp.array([0.5]))
        >>> bool(fnp.allclose(g, fl.grad(lambda x: fnp.sum(fnp.tanh(fnp.tanh(x))))(
        ...     fnp.array([0.5]))))
        True
    """

    @api_boundary
    @functools.wraps(f)
    def checkpointed(*args):
        flat, in_tree = tree_util.flatten(args)
        flat = [_as_value(x) for x in flat]
        store = {}
        out = bind(checkpoint_call_p, *flat, fun=_flat_fun(f, in_tree, store),
                   name=_fn_name(f), store=store)
        return tree_util.unflatten(store["out_tree"], list(out))

    return checkpointed
