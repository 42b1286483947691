"""Structured control flow as primitives holding sub-graphs: ``cond``, ``while``, ``scan``;
and the effects ``debug_print`` and ``tap``.

The public functions (``functorch_lite.control_flow``) trace the user's Python callables
into graphs (:mod:`functorch_lite.jit`) and bind one primitive, so under ``jit`` each
construct stays one node and its body is compiled once. Operands are flat:

* ``cond``:  ``(index, *operands)``; ``branches`` is a tuple of graphs, each taking the
  operands and returning the outputs. ``index`` is already clamped.
* ``while``: ``(*cond_consts, *body_consts, *carry)``; ``cond_graph`` maps
  ``cond_consts + carry`` to a boolean scalar, ``body_graph`` maps ``body_consts + carry``
  to the new carry.
* ``scan``:  ``(*consts, *init, *xs)``; ``body`` maps ``consts + carry + x slices`` to
  ``new carry + y slices``; outputs are the final carry and the stacked ys.

Every rule is written with the public control-flow functions, ``fl.jvp``/``fl.vjp``/
``fl.vmap`` of :func:`~functorch_lite.jit.staging.eval_graph` and ``fnp``: rules are
traceable, so ``jit(grad(...))``, ``vmap(grad(...))`` and higher orders compose.
"""

from __future__ import annotations

import builtins

from functorch_lite import numpy as fnp
from functorch_lite.core import (
    Array,
    Primitive,
    ShapedArray,
    asarray_default,
    aval_of,
    bind,
    ctx,
    is_weak_scalar,
    trace_scope,
)
from functorch_lite.jit.codegen import compile_graph, run_graph
from functorch_lite.jit.graph import Graph, Var
from functorch_lite.jit.staging import eval_eqns, eval_graph, trace_to_graph
from functorch_lite.primitives.rules import instantiate

__all__ = ["cond_p", "while_p", "scan_p", "debug_print_p", "tap_p"]


def _is_float(x):
    return aval_of(x).dtype.kind in "fc"


def _arrays(values):
    """A primitive's outputs as arrays: a rule that evaluates a graph eagerly may get
    Python scalars back (weakly typed values), which a bind never returns."""
    return tuple(fnp.asarray(v) if type(v) in (bool, int, float, complex) else v
                 for v in values)


def _graph_jvp(graph, args, tangents):
    """``(outs, tangent_outs)`` of ``graph`` at ``args`` (lists); a tangent entry for a
    non-float argument is ignored, one for a float argument must be an array."""
    from functorch_lite.autodiff import jvp

    dummy = [t if _is_float(a) else a for a, t in zip(args, tangents)]
    return jvp(lambda *xs: eval_graph(graph, xs), tuple(args), tuple(dummy))


def _graph_vjp(graph, args, cts, diff):
    """Cotangents of ``graph``'s inputs (None where ``diff`` is False) given one cotangent
    per output (``cts``, all arrays)."""
    from functorch_lite.autodiff import vjp

    if not any(diff):
        return [None] * len(args)

    def f(*dargs):
        it = iter(dargs)
        return eval_graph(graph, [next(it) if d else a for a, d in zip(args, diff)])

    _, pullback = vjp(f, *[a for a, d in zip(args, diff) if d])
    got = iter(pullback(list(cts)))
    return [next(got) if d else None for d in diff]


def _batched_call(graph, args, dims, size, force):
    """Evaluate ``graph`` on ``args`` batched along ``dims`` (an int or None each).

    Returns ``(outs, batched)``: a batched output has its batch axis first; an unbatched
    one stays unbatched unless ``force`` says so (then it is broadcast). Knowing which
    outputs depend on the batch lets loop carries that do not stay unbatched (and keep
    their weak type, like a ``fori_loop`` counter).
    """
    from functorch_lite.batching import BatchTrace, BatchTracer

    trace = BatchTrace(ctx.trace, size)
    ins = [a if d is None else BatchTracer(trace, a, d) for a, d in zip(args, dims)]
    try:
        with trace_scope(trace):
            outs = eval_graph(graph, ins)
    finally:
        trace.invalidate()
    results, batched = [], []
    for o, f in zip(outs, force):
        if type(o) is BatchTracer and o._trace is trace:
            results.append(_to_front(o.val, o.batch_dim, size))
        elif f:
            results.append(_to_front(o, None, size))
        else:
            results.append(o)
            batched.append(False)
            continue
        batched.append(True)
    return results, batched


def _batched_outputs(graph, dims, size, in_avals):
    """Which outputs of ``graph`` depend on the batch, found by tracing abstractly at
    ``in_avals`` (the avals of ``args``, batch axes included); computes nothing."""
    found = []

    def probe(*xs):
        outs, batched = _batched_call(graph, xs, dims, size, [False] * len(graph.outvars))
        found.extend(batched)
        return outs

    trace_to_graph(probe, in_avals, name="body", transform_name="vmap")
    return found


def _axis_size(args, dims):
    return next(aval_of(a).shape[d] for a, d in zip(args, dims) if d is not None)


def _to_front(x, d, size):
    """``x`` with its batch axis first (broadcast along a new one when unbatched)."""
    if d is None:
        x = fnp.asarray(x)
        return fnp.broadcast_to(fnp.expand_dims(x, 0), (size,) + tuple(x.shape))
    return x if d == 0 else fnp.moveaxis(x, d, 0)


def _call_target(outs):
    return ", ".join(outs) + ("," if len(outs) == 1 else "")


# --------------------------------------------------------------------------------------
# cond (switch): pick one branch graph by index
# --------------------------------------------------------------------------------------
def _cond_impl(xp, index, *ops, branches):
    i = builtins.min(builtins.max(int(index), 0), len(branches) - 1)
    return run_graph(branches[i], xp, ops, "branch")


def _cond_abstract_eval(index, *ops, branches):
    if index.shape != () or index.dtype.kind not in "iub":
        raise TypeError(f"fl.switch: the index must be an integer scalar, got "
                        f"{index.str_short()}")
    return tuple(branches[0].out_avals)


def _cond_jvp(primals, tangents, *, branches):
    from functorch_lite.control_flow import switch_clamped as switch

    index, *ops = primals
    ts = [instantiate(t, x) if _is_float(x) else x for t, x in zip(tangents[1:], ops)]
    fns = [lambda ops, ts, g=g: _graph_jvp(g, ops, ts) for g in branches]
    outs, t_outs = switch(index, fns, list(ops), ts)
    return _arrays(outs), tuple(t if _is_float(o) else None for o, t in zip(outs, t_outs))


def _cond_vjp(ct, out, primals, needs, *, branches):
    from functorch_lite.control_flow import switch_clamped as switch

    index, *ops = primals
    cts = [instantiate(c, o) for c, o in zip(ct, out)]
    diff = [need and _is_float(x) for need, x in zip(needs[1:], ops)]
    fns = [lambda ops, cts, g=g: [c for c in _graph_vjp(g, ops, cts, diff) if c is not None]
           for g in branches]
    got = iter(switch(index, fns, list(ops), cts))
    return (None,) + tuple(next(got) if d else None for d in diff)


def _cond_batch(args, dims, *, branches):
    from functorch_lite.control_flow import switch_clamped as switch

    (index, *ops), (index_dim, *op_dims) = args, dims
    size = _axis_size(args, dims)
    force = [True] * len(branches[0].outvars)
    fns = [lambda *ops, g=g: _batched_call(g, ops, op_dims, size, force)[0]
           for g in branches]
    if index_dim is None:
        outs = switch(index, fns, *ops)
        return _arrays(outs), (0,) * len(outs)
    # A batched index: every branch runs on the whole batch, then each example selects
    # its own branch's result.
    index = _to_front(index, index_dim, size)
    results = [fn(*ops) for fn in fns]
    selected = list(results[-1])
    for i in range(len(branches) - 2, -1, -1):
        chosen = index == i
        selected = [fnp.where(fnp.reshape(chosen, (size,) + (1,) * (fnp.ndim(o) - 1)), r, o)
                    for r, o in zip(results[i], selected)]
    return tuple(selected), (0,) * len(selected)


def _cond_emit(em, eqn, ins, outs, indent):
    fns = [em.function_for(g, "branch") for g in eqn.params["branches"]]
    index, call = ins[0], f"({', '.join(ins[1:])})"
    target = f"{_call_target(outs)} = " if outs else ""
    if len(fns) == 2:
        em.emit(f"if {index}:", indent)
        em.emit(f"{target}{fns[1]}{call}", indent + 1)
        em.emit("else:", indent)
        em.emit(f"{target}{fns[0]}{call}", indent + 1)
    else:
        em.emit(f"{target}({', '.join(fns)},)[{index}]{call}", indent)


cond_p = Primitive("cond", _cond_impl, _cond_abstract_eval, jvp=_cond_jvp, vjp=_cond_vjp,
                   batch=_cond_batch, emit="if", multiple_results=True)
cond_p.emit_code = _cond_emit


# --------------------------------------------------------------------------------------
# while: forward-mode differentiable only
# --------------------------------------------------------------------------------------
def _split_while(args, cond_nconsts, body_nconsts):
    a, b = cond_nconsts, cond_nconsts + body_nconsts
    return list(args[:a]), list(args[a:b]), list(args[b:])


def _while_impl(xp, *args, cond_graph, body_graph, cond_nconsts, body_nconsts):
    cond_consts, body_consts, carry = _split_while(args, cond_nconsts, body_nconsts)
    cond_fn = compile_graph(cond_graph, xp, "while_cond")
    body_fn = compile_graph(body_graph, xp, "while_body")
    while cond_fn(*cond_consts, *carry)[0]:
        carry = body_fn(*body_consts, *carry)
    return tuple(carry)


def _while_abstract_eval(*avals, cond_graph, body_graph, cond_nconsts, body_nconsts):
    return tuple(body_graph.out_avals)


def _while_jvp(primals, tangents, *, cond_graph, body_graph, cond_nconsts, body_nconsts):
    from functorch_lite.control_flow import while_loop

    cond_consts, body_consts, carry = _split_while(primals, cond_nconsts, body_nconsts)
    _, body_consts_dot, carry_dot = _split_while(tangents, cond_nconsts, body_nconsts)
    # Every float carry gets a tangent: a zero one on entry may become nonzero later.
    carry_dot = [instantiate(t, x) if _is_float(x) else x for t, x in zip(carry_dot, carry)]
    body_consts_dot = [instantiate(t, x) if _is_float(x) else x
                       for t, x in zip(body_consts_dot, body_consts)]
    def cond_fun(state):
        return eval_graph(cond_graph, cond_consts + list(state[0]))[0]

    def body_fun(state):
        carry, carry_dot = state
        outs, t_outs = _graph_jvp(body_graph, body_consts + list(carry),
                                  body_consts_dot + list(carry_dot))
        t_outs = [t if _is_float(o) else o for o, t in zip(outs, t_outs)]
        return list(outs), t_outs

    out, out_dot = while_loop(cond_fun, body_fun, (carry, carry_dot))
    return _arrays(out), tuple(t if _is_float(o) else None for o, t in zip(out, out_dot))


def _while_vjp_fwd(primals, needs, **params):
    raise TypeError(
        "reverse-mode differentiation (grad, vjp, jacrev) does not work through "
        "fl.while_loop: its number of iterations is only known when it runs, so no "
        "per-step values can be saved for the backward pass. Use fl.fori_loop with "
        "Python int bounds or fl.scan (both reverse-differentiable), or forward mode "
        "(fl.jvp, fl.jacfwd).")


def _while_batch(args, dims, *, cond_graph, body_graph, cond_nconsts, body_nconsts):
    from functorch_lite.control_flow import while_loop

    size = _axis_size(args, dims)
    cond_consts, body_consts, carry = _split_while(args, cond_nconsts, body_nconsts)
    cond_dims, body_dims, carry_dims = _split_while(dims, cond_nconsts, body_nconsts)
    carry_batched = [d is not None for d in carry_dims]
    carry = [_to_front(c, d, size) if d is not None else c for c, d in zip(carry, carry_dims)]
    # Fixpoint: a carry is batched if it enters batched or the body makes it so; a
    # batched predicate makes every carry batched (finished examples are held fixed).
    while True:
        dims_now = [0 if b else None for b in carry_batched]
        avals = [aval_of(c) for c in carry]
        pred_batched = _batched_outputs(cond_graph, cond_dims + dims_now, size,
                                        [aval_of(a) for a in cond_consts] + avals)[0]
        new = [True] * len(carry) if pred_batched else [
            a or b for a, b in zip(carry_batched, _batched_outputs(
                body_graph, body_dims + dims_now, size,
                [aval_of(a) for a in body_consts] + avals))]
        if new == carry_batched:
            break
        carry = [_to_front(c, None, size) if b and not old else c
                 for c, b, old in zip(carry, new, carry_batched)]
        carry_batched = new
    dims_now = [0 if b else None for b in carry_batched]

    def cond_fun(carry):
        pred = _batched_call(cond_graph, cond_consts + list(carry), cond_dims + dims_now,
                             size, [False])[0][0]
        return fnp.any(pred) if pred_batched else pred

    def body_fun(carry):
        new = _batched_call(body_graph, body_consts + list(carry), body_dims + dims_now,
                            size, carry_batched)[0]
        if not pred_batched:
            return new
        running = _batched_call(cond_graph, cond_consts + list(carry),
                                cond_dims + dims_now, size, [True])[0][0]
        return [fnp.where(fnp.reshape(running, (size,) + (1,) * (fnp.ndim(c) - 1)), n, c)
                for n, c in zip(new, carry)]

    out = while_loop(cond_fun, body_fun, carry)
    return _arrays(out), tuple(dims_now)


def _while_emit(em, eqn, ins, outs, indent):
    p = eqn.params
    cond_fn = em.function_for(p["cond_graph"], "while_cond")
    body_fn = em.function_for(p["body_graph"], "while_body")
    cond_consts, body_consts, carry = _split_while(ins, p["cond_nconsts"], p["body_nconsts"])
    if outs:
        em.emit(f"{_call_target(outs)} = {_call_target(carry)}", indent)
    em.emit(f"while {cond_fn}({', '.join(cond_consts + outs)})[0]:", indent)
    target = f"{_call_target(outs)} = " if outs else ""
    em.emit(f"{target}{body_fn}({', '.join(body_consts + outs)})", indent + 1)


while_p = Primitive("while", _while_impl, _while_abstract_eval, jvp=_while_jvp,
                    batch=_while_batch, emit="while", multiple_results=True)
while_p.vjp_fwd = _while_vjp_fwd
while_p.emit_code = _while_emit


# --------------------------------------------------------------------------------------
# scan: a loop over the leading axis of xs, carrying state; reverse mode saves the
# carry entering each step and runs the body's vjp backwards over the steps.
# --------------------------------------------------------------------------------------
def _split_scan(args, num_consts, num_carry):
    a, b = num_consts, num_consts + num_carry
    return list(args[:a]), list(args[a:b]), list(args[b:])


def _stacked(aval, length):
    """The aval of ``length`` stacked per-step outputs ``aval``. Weakly typed ones (Python
    scalars) stack to an array of the default dtype, as ``fnp.stack`` of them does (and
    an eager scan): an array is never weakly typed."""
    if aval.weak_type:
        dtype = asarray_default(aval.promotion_operand()).dtype
        return ShapedArray((length,) + aval.shape, dtype)
    return ShapedArray((length,) + aval.shape, aval.dtype)


def _scan_impl(xp, *args, body, num_consts, num_carry, length, reverse):
    consts, carry, xs = _split_scan(args, num_consts, num_carry)
    fn = compile_graph(body, xp, "scan_body")
    ys = [xp.empty(s.shape, s.dtype)
          for s in (_stacked(a, length) for a in body.out_avals[num_carry:])]
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        out = fn(*consts, *carry, *[x[i] for x in xs])
        carry = out[:num_carry]
        for buf, y in zip(ys, out[num_carry:]):
            buf[i] = y
    return tuple(carry) + tuple(ys)


def _scan_abstract_eval(*avals, body, num_consts, num_carry, length, reverse):
    outs = body.out_avals
    ys = [_stacked(a, length) for a in outs[num_carry:]]
    return tuple(outs[:num_carry]) + tuple(ys)


def _scan_jvp(primals, tangents, *, body, num_consts, num_carry, length, reverse):
    from functorch_lite.control_flow import scan

    consts, carry, xs = _split_scan(primals, num_consts, num_carry)
    full = [instantiate(t, x) if _is_float(x) else x for t, x in zip(tangents, primals)]
    consts_dot, carry_dot, xs_dot = _split_scan(full, num_consts, num_carry)

    def step(state, x_pair):
        (c, c_dot), (x, x_dot) = state, x_pair
        outs, t_outs = _graph_jvp(body, consts + list(c) + list(x),
                                  consts_dot + list(c_dot) + list(x_dot))
        t_outs = [t if _is_float(o) else o for o, t in zip(outs, t_outs)]
        return ((outs[:num_carry], t_outs[:num_carry]),
                (outs[num_carry:], t_outs[num_carry:]))

    (c, c_dot), (ys, ys_dot) = scan(step, (carry, carry_dot), (xs, xs_dot), length=length,
                                    reverse=reverse)
    out, out_dot = list(c) + list(ys), list(c_dot) + list(ys_dot)
    return _arrays(out), tuple(t if _is_float(o) else None for o, t in zip(out, out_dot))


def _scan_vjp_fwd(primals, needs, *, body, num_consts, num_carry, length, reverse):
    from functorch_lite.control_flow import scan

    consts, carry, xs = _split_scan(primals, num_consts, num_carry)
    needs_consts, _, needs_xs = _split_scan(needs, num_consts, num_carry)
    diff = ([n and _is_float(k) for n, k in zip(needs_consts, consts)]
            + [_is_float(c) for c in carry]
            + [n and _is_float(x) for n, x in zip(needs_xs, xs)])
    plan = _SavedResiduals.plan(body, num_consts, diff)
    if plan is None:  # custom rules or nested control flow: the backward pass recomputes
        def step(c, x):
            outs = eval_graph(body, consts + list(c) + list(x))
            return outs[:num_carry], (outs[num_carry:], list(c), [])
    else:
        forward = plan.forward_graph
        num_outs = len(body.outvars)

        def step(c, x):
            outs = eval_graph(forward, consts + list(c) + list(x))
            return outs[:num_carry], (outs[num_carry:num_outs], list(c), outs[num_outs:])

    final, (ys, carries, saved) = scan(step, carry, xs, length=length, reverse=reverse)
    out = _arrays(list(final) + list(ys))
    return out, (consts, carries, xs, out, diff, plan, saved)


def _scan_vjp_bwd(ct, residuals, needs, *, body, num_consts, num_carry, length, reverse):
    from functorch_lite.control_flow import scan

    consts, carries, xs, out, diff, plan, saved = residuals
    # Zeros are made like existing values (zeros_like), so they live on their device.
    cts = [fnp.zeros_like(o) if c is None else c for c, o in zip(ct, out)]
    ct_carry, ct_ys = cts[:num_carry], cts[num_carry:]
    diff_consts, diff_carry, diff_xs = _split_scan(diff, num_consts, num_carry)

    def back(acc, inputs):
        ct_c, ct_k = acc
        c, x, ct_y, step_saved = inputs
        args = consts + list(c) + list(x)
        if plan is None:
            g = _graph_vjp(body, args, list(ct_c) + list(ct_y), diff)
        else:
            g = plan.backward(args, step_saved, list(ct_c) + list(ct_y))
        g_k, g_c, g_x = _split_scan(g, num_consts, num_carry)
        new_ct_c = [gc if gc is not None else old for gc, old in zip(g_c, ct_c)]
        new_ct_k = [acc_k + gk for acc_k, gk in zip(ct_k, [g for g in g_k if g is not None])]
        return (new_ct_c, new_ct_k), [g for g in g_x if g is not None]

    ct_k0 = [fnp.zeros_like(k) for k, d in zip(consts, diff_consts) if d]
    (ct_init, ct_k), ct_xs = scan(back, (ct_carry, ct_k0), (carries, xs, ct_ys, saved),
                                  length=length, reverse=not reverse)
    ct_k, ct_xs = iter(ct_k), iter(ct_xs)
    needs_init = _split_scan(needs, num_consts, num_carry)[1]
    return (tuple(next(ct_k) if d else None for d in diff_consts)
            + tuple(c if n and d else None for c, n, d in zip(ct_init, needs_init, diff_carry))
            + tuple(next(ct_xs) if d else None for d in diff_xs))


class _SavedResiduals:
    """A scan body's reverse mode with its residuals saved per step, not recomputed.

    The forward scan runs ``forward_graph``: the body, also returning the step's values
    that the derivative rules read (``saved``: values that depend on the carry or the
    scanned inputs; loop-invariant ones are recomputed from the constants). The backward
    scan builds the body's tape from them (:meth:`backward`) and runs the rules: per step,
    no forward work is redone (an LSTM step's ``h @ w_h`` and its gates are computed once,
    as a hand-written BPTT does). Costs the memory of the saved values, as in JAX; wrap the
    body in ``fl.checkpoint`` to recompute instead (that is a custom rule: this plan then
    does not apply).
    """

    def __init__(self, body, diff, entries, saved, const_eqns):
        self.body = body
        self.diff = diff
        self.entries = entries        # the equations with a derivative rule to run
        self.saved = saved            # Vars stacked by the forward scan
        self.const_eqns = const_eqns  # loop-invariant equations the tape reads
        self.forward_graph = Graph(body.constvars, body.consts, body.invars, body.eqns,
                                   body.outvars + saved)

    @classmethod
    def plan(cls, body, num_consts, diff):
        """The plan for ``body`` differentiated w.r.t. the inputs ``diff`` says, or None
        when an equation on the derivative's path has custom rules, a sub-graph or several
        results, or a saved value is weakly typed (a Python scalar)."""
        varying = set(body.invars[num_consts:])
        active = {v for v, d in zip(body.invars, diff) if d}
        entries, needed, const_eqns = [], set(), []
        for eqn in body.eqns:
            ins = [v for v in eqn.inputs if type(v) is Var]
            if any(v in varying for v in ins):
                varying.update(eqn.outputs)
            else:
                const_eqns.append(eqn)
            if not eqn.prim.differentiable or not any(v in active for v in ins):
                continue
            if (eqn.subgraph is not None or eqn.prim.vjp_fwd is not None
                    or eqn.prim.multiple_results):
                return None
            out = eqn.outputs[0]
            if out.aval.dtype.kind not in "fc":
                continue  # an integer result carries no cotangent
            active.add(out)
            entries.append(eqn)
            if eqn.prim.vjp_reads == "values":
                needed.add(out)
                needed.update(ins)
            elif eqn.prim.vjp_reads == "inputs":
                needed.update(ins)
        inputs = set(body.invars)
        saved = [v for e in body.eqns for v in e.outputs
                 if v in needed and v in varying and v not in inputs]
        if any(v.aval.weak_type for v in saved):
            return None
        # loop-invariant equations whose values the rules read, and what those read
        wanted, kept = set(needed), []
        for eqn in reversed(const_eqns):
            if any(v in wanted for v in eqn.outputs):
                kept.append(eqn)
                wanted.update(v for v in eqn.inputs if type(v) is Var)
        return cls(body, diff, entries, saved, kept[::-1])

    def backward(self, args, saved_values, cts):
        """Cotangents of the body's inputs (None where not differentiated) at ``args``,
        given the step's saved values and one cotangent per body output."""
        from functorch_lite import autodiff

        body = self.body
        env = dict(zip(body.constvars, body.consts))
        env.update(zip(body.invars, args))
        env.update(zip(self.saved, saved_values))
        eval_eqns(self.const_eqns, env)
        slot = {v: i for i, v in enumerate(v for v, d in zip(body.invars, self.diff) if d)}
        tape = []
        for eqn in self.entries:
            reads = eqn.prim.vjp_reads
            if reads in ("values", "inputs"):
                primals = [env[v] if type(v) is Var else v.value for v in eqn.inputs]
            else:  # shapes only: an abstract value stands for one not kept
                primals = [env.get(v, v.aval) if type(v) is Var else v.value
                           for v in eqn.inputs]
            out_var = eqn.outputs[0]
            residuals = (env[out_var] if reads == "values" else None, primals)
            in_slots = [slot.get(v, -1) if type(v) is Var else -1 for v in eqn.inputs]
            slot[out_var] = len(slot)
            tape.append((eqn.prim, eqn.params, residuals, in_slots, slot[out_var], False))
        seeds = {}
        for v, ct in zip(body.outvars, cts):
            s = slot.get(v) if type(v) is Var else None
            if s is not None:
                seeds[s] = ct if s not in seeds else seeds[s] + ct
        # eagerly, every step records the same tape: it runs as one compiled program
        wanted = [slot[v] for v, d in zip(body.invars, self.diff) if d]
        got = autodiff.backward_of_tape(tape, len(slot), seeds, wanted)
        if got is None:
            got = autodiff.run_tape(tape, len(slot), seeds, consume=True)
        return [instantiate(got[slot[v]], a) if d else None
                for v, a, d in zip(body.invars, args, self.diff)]


def _scan_batch(args, dims, *, body, num_consts, num_carry, length, reverse):
    from functorch_lite.control_flow import scan

    size = _axis_size(args, dims)
    consts, carry, xs = _split_scan(args, num_consts, num_carry)
    const_dims, carry_dims, xs_dims = _split_scan(dims, num_consts, num_carry)
    # The scanned axis stays first: a batched x gets its batch axis second, so each
    # step's slice has it first.
    xs = [x if d is None else fnp.moveaxis(x, d, 1) for x, d in zip(xs, xs_dims)]
    step_dims = [None if d is None else 0 for d in xs_dims]
    step_avals = [ShapedArray(aval_of(x).shape[1:], aval_of(x).dtype) for x in xs]
    carry_batched = [d is not None for d in carry_dims]
    carry = [_to_front(c, d, size) if d is not None else c for c, d in zip(carry, carry_dims)]
    # Fixpoint: a carry is batched if it enters batched or the body makes it so.
    while not all(carry_batched):
        in_dims = const_dims + [0 if b else None for b in carry_batched] + step_dims
        found = _batched_outputs(body, in_dims, size,
                                 [aval_of(a) for a in consts + carry] + step_avals)
        new = [a or b for a, b in zip(carry_batched, found)]
        if new == carry_batched:
            break
        carry = [_to_front(c, None, size) if b and not old else c
                 for c, b, old in zip(carry, new, carry_batched)]
        carry_batched = new
    in_dims = const_dims + [0 if b else None for b in carry_batched] + step_dims
    force = carry_batched + [True] * (len(body.outvars) - num_carry)

    def step(c, x):
        outs = _batched_call(body, consts + list(c) + list(x), in_dims, size, force)[0]
        return outs[:num_carry], outs[num_carry:]

    final, ys = scan(step, carry, xs, length=length, reverse=reverse)
    return (_arrays(list(final) + list(ys)),
            tuple(0 if b else None for b in carry_batched) + (1,) * len(ys))


def _scan_emit(em, eqn, ins, outs, indent):
    p = eqn.params
    nk, nc, length = p["num_consts"], p["num_carry"], p["length"]
    body = p["body"]
    fn = em.function_for(body, "scan_body")
    consts, carry, xs = _split_scan(ins, nk, nc)
    carry_out, ys_out = outs[:nc], outs[nc:]
    if carry_out:
        em.emit(f"{_call_target(carry_out)} = {_call_target(carry)}", indent)
    for y, aval in zip(ys_out, body.out_avals[nc:]):
        stacked = _stacked(aval, length)
        dtype = em.global_(stacked.dtype, "dtype")
        em.emit(f"{y} = xp.empty({stacked.shape}, {dtype})", indent)
    i = em.fresh("i")
    steps = f"range({length - 1}, -1, -1)" if p["reverse"] else f"range({length})"
    em.emit(f"for {i} in {steps}:", indent)
    step_ys = [em.fresh("y") for _ in ys_out]
    args = consts + carry_out + [f"{x}[{i}]" for x in xs]
    targets = carry_out + step_ys
    target = f"{_call_target(targets)} = " if targets else ""
    em.emit(f"{target}{fn}({', '.join(args)})", indent + 1)
    for y, step_y in zip(ys_out, step_ys):
        em.emit(f"{y}[{i}] = {step_y}", indent + 1)


scan_p = Primitive("scan", _scan_impl, _scan_abstract_eval, jvp=_scan_jvp, batch=_scan_batch,
                   emit="for", multiple_results=True)
scan_p.vjp_fwd = _scan_vjp_fwd
scan_p.vjp_bwd = _scan_vjp_bwd
scan_p.emit_code = _scan_emit


# --------------------------------------------------------------------------------------
# debug_print: an effect. No outputs; never removed by the jit; prints primal values
# under grad (it is not differentiable, so autodiff passes it its primals) and the
# whole batch under vmap.
# --------------------------------------------------------------------------------------
def _debug_print_impl(xp, *bufs, fmt, in_tree):
    args, kwargs = in_tree.unflatten(list(bufs))
    builtins.print(fmt.format(*args, **kwargs))
    return ()


def _debug_print_batch(args, dims, *, fmt, in_tree):
    size = _axis_size(args, dims)
    moved = [a if d is None else _to_front(a, d, size) for a, d in zip(args, dims)]
    bind(debug_print_p, *moved, fmt=fmt, in_tree=in_tree)
    return (), ()


debug_print_p = Primitive("debug_print", _debug_print_impl, lambda *avals, **params: (),
                          batch=_debug_print_batch, emit="print", differentiable=False,
                          multiple_results=True)
debug_print_p.effectful = True


# --------------------------------------------------------------------------------------
# tap: an effect like debug_print that hands the values to a Python function instead.
# No outputs (``fl.debug.tap`` returns its argument itself), so derivatives pass around it
# untouched; not differentiable, so under grad/jvp ``fn`` sees the forward values; under
# vmap it sees the whole batch, every leaf with the batch axis first.
# --------------------------------------------------------------------------------------
def _tap_impl(xp, *bufs, fn, in_tree):
    values = [Array(asarray_default(b) if is_weak_scalar(b) else b) for b in bufs]
    fn(in_tree.unflatten(values))
    return ()


def _tap_batch(args, dims, *, fn, in_tree):
    size = _axis_size(args, dims)
    bind(tap_p, *[_to_front(a, d, size) for a, d in zip(args, dims)], fn=fn, in_tree=in_tree)
    return (), ()


tap_p = Primitive("tap", _tap_impl, lambda *avals, **params: (), batch=_tap_batch,
                  differentiable=False, multiple_results=True)
tap_p.effectful = True
