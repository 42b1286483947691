"""NaN checking (``fl.debug.nans``): a trace at the bottom of the stack that looks at the
outputs of every primitive and raises at the first one that creates a NaN.

While checking is on, a :class:`NanTrace` is current where no transform is (``ctx.trace``
instead of ``None``), so every ``bind`` that would run eagerly reaches it: plain eager
code, the arithmetic every transform does on its parent trace (the NanTrace is the last
parent of all), the derivative rules of a backward pass, and the equations of a jitted
function (``jit`` evaluates its graph equation by equation when a trace is current).
The trace runs the primitive as eager ``bind`` would, then checks its floating-point
outputs. While checking is off nothing of this exists: the eager paths are untouched.

Rules of the check:

* A NaN counts only when the primitive created it: if an input already holds a NaN, the
  output may hold it too (the primitive that created it raised, or the data had it).
* A control-flow primitive (``cond``, ``while``, ``scan``) runs a compiled body; when it
  creates a NaN, its body is run again equation by equation to name the primitive inside.
* Inside ``jit`` the line of the user's function is unknown (its graph runs, not its
  Python), so the function is run again without ``jit`` to point at the line, as JAX's
  ``debug_nans`` does. Side effects in it (``fl.debug.print``, ``fl.debug.tap``) run
  again too.
"""

from __future__ import annotations

import sys

import numpy as np

from functorch_lite import tree as tree_util
from functorch_lite.autodiff import JVPTrace, run_tape
from functorch_lite.core import Array, Trace, Tracer, aval_of, ctx, eager_apply, xp_of_buffer
from functorch_lite.jit import api as jit_api
from functorch_lite.jit.staging import eval_graph, user_frame

__all__ = ["NanTrace", "enabled", "set_enabled"]


class NanTrace(Trace):
    """The checking trace. ``checking`` is False while ``nans(False)`` holds inside a
    transform, where the trace cannot be taken off the stack (it is every trace's root)."""

    transform_name = "fl.debug.nans"

    def __init__(self):
        super().__init__(None)
        self.checking = True
        self.rerunning = False   # the error being raised already looked for its jit
        self.context = []        # "inside the body of scan", ... for the message

    def process(self, prim, args, params):
        if not self.checking:
            if ctx.trace is self:  # turned off inside a transform that has returned since
                ctx.trace = None
            return eager_apply(prim, args, params)
        with np.errstate(invalid="ignore"):  # NumPy's warning would only precede the error
            out = eager_apply(prim, args, params)
        outs = out if prim.multiple_results else (out,)
        for o in outs:
            if _has_nan(o):
                if not any(_has_nan(a) for a in args):
                    self._raise(prim, args, params, outs)
                break
        return out

    def _raise(self, prim, args, params, outs):
        """Raise the FloatingPointError for ``prim``, after running again what can point
        closer at the cause: the function of the enclosing ``jit`` without jit (once, so
        not again for NaNs found while doing so), then a control-flow body."""
        rerunning, pushed = self.rerunning, 0
        try:
            call = None if rerunning else _jit_call()
            if call is not None:
                jitted, call_args, kwargs = call
                name = f"jit({getattr(jitted, '_name', 'function')})"
                self.rerunning = True
                if not any(isinstance(leaf, Tracer)
                           for leaf in tree_util.leaves((call_args, kwargs))):
                    self._run_again(f"inside {name}, run again without jit to find the line",
                                    _call_without_jit, jitted, call_args, kwargs)
                self.context.append(f"inside {name}")
                pushed = 1
            rerun = _BODY_RERUNS.get(prim.name)
            if rerun is not None:
                self._run_again(f"inside the body of {prim.name}", rerun, args, params)
            contexts = list(self.context)
            rule = _rule_context(prim)
            if rule is not None:
                contexts.append(rule)
            raise FloatingPointError(_message(prim, args, outs, contexts))
        finally:
            del self.context[len(self.context) - pushed:]
            self.rerunning = rerunning

    def _run_again(self, context, fn, *args):
        """Run ``fn(*args)`` on this trace with ``context`` noted: a FloatingPointError it
        raises (naming a primitive) propagates; a run that fails otherwise or finds no
        NaN (values may differ from the compiled code's) leaves the caller to report."""
        self.context.append(context)
        try:
            fn(*args)
        except FloatingPointError:
            raise
        except Exception:  # the NaN found first is reported instead
            pass
        finally:
            self.context.pop()


# --------------------------------------------------------------------------------------
# Turning it on and off
# --------------------------------------------------------------------------------------
def _root(trace):
    while trace is not None and trace.parent is not None:
        trace = trace.parent
    return trace


def enabled() -> bool:
    root = _root(ctx.trace)
    return type(root) is NanTrace and root.checking


def set_enabled(on):
    current = ctx.trace
    root = _root(current)
    if type(root) is NanTrace:
        if current is root and not on:
            ctx.trace = None
        else:
            root.checking = on
        return
    if not on:
        return
    if current is not None:
        raise RuntimeError(
            f"fl.debug.nans(True) was called inside {current.transform_name}, but NaN "
            "checking must be turned on where no transform is running. Call it before "
            "grad/vmap/jit (or wrap the call of the transformed function in "
            "`with fl.debug.nans():`).")
    ctx.trace = NanTrace()


# --------------------------------------------------------------------------------------
# The check and the message
# --------------------------------------------------------------------------------------
def _buffer(x):
    """The floating-point buffer of a primitive's input or output, or None."""
    t = type(x)
    if t is bool or t is int or t is float or t is complex or isinstance(x, Tracer):
        return None
    buf = x._buf if t is Array else x
    if not hasattr(buf, "dtype"):  # a (nested) list given to an fnp function
        buf = np.asarray(buf)
    return buf if buf.dtype.kind in "fc" else None


def _has_nan(x):
    if type(x) is float or type(x) is complex:
        return x != x
    buf = _buffer(x)
    return buf is not None and bool(xp_of_buffer(buf).isnan(buf).any())


def _message(prim, args, outs, contexts):
    ins = ", ".join(aval_of(a).str_short() for a in args)
    results = ", ".join(aval_of(o).str_short() for o in outs)
    counts = ""
    for o in outs:
        buf = _buffer(o)
        if buf is not None and buf.ndim:
            nans = int(xp_of_buffer(buf).isnan(buf).sum())
            counts = f", NaN in {nans} of {buf.size} elements"
            break
    lines = [f"{prim.name} produced NaN from inputs without NaN: {prim.name}({ins}) -> "
             f"{results}{counts}"]
    lines += [f"  {c}" for c in contexts]
    where = user_frame()
    if where is not None:
        lines.append(f"  at {where[0]}:{where[1]}" + (f"\n    {where[2]}" if where[2] else ""))
    lines.append(
        f"fl.debug.nans is on. Look at the values reaching {prim.name} (guard them with "
        "fnp.where, fnp.clip or a small epsilon), or turn the check off with "
        "fl.debug.nans(False).")
    return "\n".join(lines)


def _rule_context(prim):
    """Which derivative rule is running, when it is not ``prim``'s own forward-mode rule
    (whose NaN is the forward value's): found from the frames of the autodiff traces."""
    backward, jvp = run_tape.__code__, JVPTrace.process.__code__
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code is backward:
            rule = getattr(frame.f_locals.get("prim"), "name", "a primitive")
            return f"in the backward pass of grad: the derivative rule of {rule}"
        if frame.f_code is jvp:
            local = frame.f_locals
            rule = local.get("prim")
            # Only an active, differentiable primitive runs its rule; others are bound.
            if (local.get("active") and getattr(rule, "differentiable", False)
                    and rule is not prim):
                return f"in forward mode (jvp): the derivative rule of {rule.name}"
        frame = frame.f_back
    return None


def _jit_call():
    """``(jitted, args, kwargs)`` of the innermost jitted function evaluating its graph on
    the current trace (see ``Jitted._call_inside_trace``), or None."""
    if jit_api.state.disabled:  # the function runs as Python: its lines are on the stack
        return None
    code = jit_api.Jitted._call_inside_trace.__code__
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code is code:
            local = frame.f_locals
            args = tuple(local["args"])
            if local.get("instance") is not None:
                args = (local["instance"],) + args
            return local["self"], args, dict(local["kwargs"])
        frame = frame.f_back
    return None


def _call_without_jit(jitted, args, kwargs):
    with jit_api.disable_jit():
        jitted.fun(*args, **kwargs)


# --------------------------------------------------------------------------------------
# Control flow, body equation by body equation (operand layouts: primitives/control_flow)
# --------------------------------------------------------------------------------------
def _cond_again(args, params):
    index, *operands = args
    branches = params["branches"]
    eval_graph(branches[min(max(int(index), 0), len(branches) - 1)], operands)


def _while_again(args, params):
    nc, nb = params["cond_nconsts"], params["body_nconsts"]
    cond_consts, body_consts, carry = list(args[:nc]), list(args[nc:nc + nb]), list(args[nc + nb:])
    while bool(eval_graph(params["cond_graph"], cond_consts + carry)[0]):
        carry = eval_graph(params["body_graph"], body_consts + carry)


def _scan_again(args, params):
    n, m = params["num_consts"], params["num_carry"]
    consts, carry, xs = list(args[:n]), list(args[n:n + m]), args[n + m:]
    steps = range(params["length"])
    for i in (reversed(steps) if params["reverse"] else steps):
        carry = eval_graph(params["body"], consts + carry + [x[i] for x in xs])[:m]


_BODY_RERUNS = {"cond": _cond_again, "while": _while_again, "scan": _scan_again}
