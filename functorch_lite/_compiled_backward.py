"""Compiled backward passes for eager reverse mode.

An eager ``grad`` records a tape while ``f`` runs and then walks it backwards, running
each primitive's derivative rule in Python. A training loop records the *same* tape step
after step: the same primitives with the same parameters, operand shapes and dtypes, and
the same wiring. Interpreting the rules again each step is repeated work, and on a CPU
that shares its caches with BLAS it is slow work (the rules' Python runs cold after every
large matmul).

So the tape's structure is a cache key. The first time a structure is seen the rules run
as usual; the second time, the backward pass is traced once (the rules on staging tracers,
exactly as under ``jit(grad(f))``), optimized and compiled to straight-line NumPy by the
jit's code generator, and that program runs from then on. The forward pass is untouched:
``f`` runs eagerly every time, Python control flow and side effects included; only the
derivative rules, which are pure functions of the residuals, are compiled.

What keys a program: each entry's primitive, parameters, cotangent wiring (slots and which
inputs want cotangents), and for each residual its shape and dtype (arrays) or its type
(Python scalars, passed in as weakly typed values, so a changing scalar does not recompile);
the seeds' shapes and dtypes; which cotangents are asked for; the x64 flag.

Not compiled (the rules run as before): tapes with custom rules (``custom_vjp``,
``custom_jvp``, ``checkpoint``: their rules call user code), tapes recorded under another
transform or ``fl.debug.nans``, non-NumPy buffers, and tapes whose rules cannot be traced
(one that reads a concrete value), which are remembered and never tried again.
"""

from __future__ import annotations

import numpy as np

from functorch_lite.config import settings
from functorch_lite.core import Array, ShapedArray

# Programs by tape structure, oldest first: a structure seen once maps to 1, a compiled one
# to its program, one whose rules cannot be traced to _UNTRACEABLE.
_cache: dict = {}
_MAX_ENTRIES = 256
_UNTRACEABLE = object()
_PY_SCALARS = (bool, int, float, complex)


def cached_backward(tape, num_slots, seeds, wanted, wrap):
    """The cotangents of the slots ``wanted`` (a list of ``num_slots``, None elsewhere) by
    a compiled program, each buffer passed through ``wrap`` (to an Array), or None: not
    compilable, or a structure seen for the first time."""
    key, inputs = _signature(tape, seeds, wanted)
    if key is None:
        return None
    try:
        program = _cache[key]
    except TypeError:  # an unhashable parameter
        return None
    except KeyError:
        if len(_cache) >= _MAX_ENTRIES:
            del _cache[next(iter(_cache))]
        _cache[key] = 1
        return None
    if type(program) is int:
        try:
            program = _compile(tape, num_slots, sorted(seeds), wanted, inputs)
        except Exception:  # noqa: BLE001 - a rule that cannot be traced: interpret it
            program = _UNTRACEABLE
        _cache[key] = program
    if program is _UNTRACEABLE:
        return None
    outs = program(*inputs)
    cts = [None] * num_slots
    for slot, present in zip(wanted, program.present):
        if present:
            cts[slot] = wrap(outs[present - 1])
    return cts


def clear_cache():
    """Forget every compiled backward pass (tests)."""
    _cache.clear()


def _signature(tape, seeds, wanted):
    """``(key, inputs)`` of a tape, or ``(None, None)`` when it is not compilable.

    ``inputs`` are the residual arrays and scalars in tape order, then the seeds in slot
    order: the arguments of the compiled program.
    """
    key = [settings.x64, tuple(wanted)]
    inputs = []
    add_input = inputs.append
    for prim, params, residuals, in_slots, out_slots, _ in tape:
        if prim.vjp_bwd is not None:  # custom residuals, and rules that call user code
            return None, None
        out, primals = residuals
        if params:
            params = _plain(params)
            if params is None:
                return None, None
        key += (prim, params or None, tuple(in_slots), out_slots)
        if type(out) is tuple:
            key.append(len(out))
            values = (*out, *primals)
        else:
            values = (out, *primals)
        for v in values:
            t = type(v)
            if t is np.ndarray:
                key += (v.shape, v.dtype)
                add_input(v)
            elif t is Array:
                v = v._buf
                if type(v) is not np.ndarray:
                    if not isinstance(v, np.generic):  # a GPU buffer
                        return None, None
                    v = np.asarray(v)
                key += (v.shape, v.dtype)
                add_input(v)
            elif t in _PY_SCALARS:
                key += (t, None)
                add_input(v)
            elif v is None or t is ShapedArray:
                key += (v, None)  # static: no input
            elif isinstance(v, np.generic):  # a NumPy scalar: a 0-d array
                key += ((), v.dtype)
                add_input(np.asarray(v))
            else:
                return None, None
    for slot in sorted(seeds):
        v = seeds[slot]
        b = v._buf if type(v) is Array else v
        if type(b) is not np.ndarray:
            return None, None
        key += (slot, b.shape, b.dtype)
        add_input(b)
    return tuple(key), inputs


# Parameter value types a key may hold; modules add their own static types (indexing adds
# its StaticIndex).
PLAIN_PARAM_TYPES = {int, float, bool, str, type(None)}


def _plain(params):
    """``params`` as a key: a tuple of items when every value is a plain value (numbers,
    strings, dtypes, static indices, tuples of those), else None. A graph or a function in
    the params (control flow, vmap of a closure) is new at every call and may hold arrays:
    such a tape is not cached, so the cache never keeps them alive."""
    plain = PLAIN_PARAM_TYPES
    for v in params.values():
        t = type(v)
        if t in plain:
            continue
        if t is tuple:  # (a loop, not all(genexpr): this runs for most entries of a tape)
            for e in v:
                if type(e) not in plain and type(e) is not tuple:
                    return None
        elif not isinstance(v, np.dtype):
            return None
    return tuple(params.items())


def _compile(tape, num_slots, seed_slots, wanted, inputs):
    """Trace the backward pass over ``tape`` at the inputs' abstract values and compile it.

    The program returns the present cotangents of ``wanted``; ``program.present[i]`` is 0
    when ``wanted[i]`` gets none, else its 1-based position in the results.
    """
    from functorch_lite.autodiff import run_tape
    from functorch_lite.core import aval_of
    from functorch_lite.jit.codegen import compile_graph
    from functorch_lite.jit.passes import optimize
    from functorch_lite.jit.staging import trace_to_graph

    store = {}

    def backward(*xs):
        it = iter(xs)
        staged = []
        for prim, params, (out, primals), in_slots, out_slots, _ in tape:
            out = (tuple(_stage(o, it) for o in out) if type(out) is tuple
                   else _stage(out, it))
            primals = [_stage(p, it) for p in primals]
            staged.append((prim, params, (out, primals), in_slots, out_slots, False))
        seeds = {slot: next(it) for slot in seed_slots}
        cts = run_tape(staged, num_slots, seeds, consume=True)
        wanted_cts = [cts[slot] for slot in wanted]
        present, position = [], 0
        for c in wanted_cts:
            position = position + 1 if c is not None else position
            present.append(position if c is not None else 0)
        store["present"] = tuple(present)
        return [c for c in wanted_cts if c is not None]

    avals = [aval_of(x) for x in inputs]
    graph, captured, _ = trace_to_graph(backward, avals, name="backward",
                                        transform_name="grad")
    if captured:
        raise RuntimeError("the backward pass captured outer values")
    program = compile_graph(optimize(graph), np, "backward")
    program.present = store["present"]
    return program


def _stage(value, inputs):
    """A residual in the staged tape: static ones stay, arrays are the next input."""
    return value if value is None or type(value) is ShapedArray else next(inputs)
