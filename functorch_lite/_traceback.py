"""Tracebacks that point at the user's code, not at the library's insides.

An exception that leaves a public entry point (a transform, an ``fnp`` function) has its
traceback rewritten: every frame whose code lives in the ``functorch_lite`` package is
dropped and every other frame is kept, so the user sees the line of *their* code that went
wrong (including lines of their own function called back from inside ``grad``). A note
says frames were hidden; ``FL_SHOW_INTERNAL_FRAMES=1`` in the environment turns the
filtering off (read when an exception happens, so it can be set at any time).

Two ways to install a boundary:

* ``@api_boundary`` on a public function (a transform, an ``fnp`` function that is not on
  the eager hot path). It costs one extra Python call per call (~50-100 ns).
* Inside a hot function, a ``try``/``except`` around its body, which costs nothing until
  an exception is raised (Python 3.11 try blocks are free)::

      try:
          ...
      except Exception as e:
          hide_internal_frames(e)
          raise          # a bare raise: no frame of this function is added back

Boundaries nest (an ``fnp`` call inside a user function inside ``grad``): each one hides
only the frames the exception crossed since the previous boundary, and the note is added
once.
"""

from __future__ import annotations

import functools
import inspect
import linecache
import os
import types

__all__ = ["api_boundary", "hide_internal_frames", "NOTE"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

NOTE = "(functorch_lite internal frames hidden; set FL_SHOW_INTERNAL_FRAMES=1 to see them)"

# Attribute on an exception: the head of the traceback a boundary built for it. Everything
# from that entry on is already filtered, so an enclosing boundary stops walking there.
_FILTERED_HEAD = "_functorch_lite_filtered_tb"
_NOTHING = object()


def _show_internal_frames():
    return os.environ.get("FL_SHOW_INTERNAL_FRAMES", "") not in ("", "0")


def _is_internal(frame):
    return frame.f_code.co_filename.startswith(_PACKAGE_DIR)


def _filter(tb, stop):
    """``tb`` without internal frames; entries from ``stop`` on are kept as they are.

    Returns ``(new_tb, hidden)`` where ``hidden`` says whether a frame was dropped.
    """
    kept = []
    hidden = False
    while tb is not None and tb is not stop:
        if _is_internal(tb.tb_frame):
            hidden = True
        else:
            kept.append(tb)
        tb = tb.tb_next
    new_tb = tb  # the already-filtered rest (or None)
    for entry in reversed(kept):
        new_tb = types.TracebackType(new_tb, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return new_tb, hidden


def _filter_chain(exc, seen):
    """Filter ``exc``'s traceback and those of its causes and contexts, in place."""
    hidden = False
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        stop = getattr(exc, _FILTERED_HEAD, _NOTHING)
        tb = exc.__traceback__
        if stop is tb:  # nothing crossed since the last boundary
            new_tb, exc_hidden = tb, False
        else:
            new_tb, exc_hidden = _filter(tb, stop)
            exc.__traceback__ = new_tb
        try:
            setattr(exc, _FILTERED_HEAD, new_tb)
        except AttributeError:  # pragma: no cover - exceptions always accept attributes
            pass
        hidden = hidden or exc_hidden
        if exc.__cause__ is not None:
            hidden = _filter_chain(exc.__cause__, seen) or hidden
        exc = None if exc.__suppress_context__ else exc.__context__
    return hidden


def hide_internal_frames(exc: BaseException) -> BaseException:
    """Drop ``functorch_lite`` frames from ``exc``'s traceback (and its causes'), in place.

    Call it in an ``except`` clause followed by a bare ``raise``. Adds :data:`NOTE` once
    when frames were hidden. Does nothing when ``FL_SHOW_INTERNAL_FRAMES=1``.

    Returns:
        ``exc``, for convenience.
    """
    if _show_internal_frames():
        return exc
    if _filter_chain(exc, set()) and NOTE not in getattr(exc, "__notes__", ()):
        add_note = getattr(exc, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(NOTE)
    return exc


def api_boundary(fn):
    """Decorator for a public entry point: exceptions leave it with internal frames hidden.

    For a plain function the wrapper has exactly ``fn``'s parameters (no ``*args,
    **kwargs`` repacking), which keeps its cost to one extra Python call, ~15 ns, instead of
    ~140 ns for a generic wrapper. Decorating twice is a no-op.

    Example:
        >>> import traceback
        >>> from functorch_lite._traceback import api_boundary
        >>> @api_boundary
        ... def ratio(a, b=1):
        ...     return a / b
        >>> try:
        ...     ratio(1, b=0)
        ... except ZeroDivisionError as e:
        ...     print([f.name for f in traceback.extract_tb(e.__traceback__)])
        ['<module>', 'ratio']
    """
    if getattr(fn, _IS_BOUNDARY, False):
        return fn
    if isinstance(fn, types.FunctionType):
        wrapper = _wrapper_factory(fn.__code__)(fn, hide_internal_frames)
        wrapper.__defaults__ = fn.__defaults__
        wrapper.__kwdefaults__ = fn.__kwdefaults__
    else:  # a builtin, a class, a callable object: forward everything
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                hide_internal_frames(e)
                raise
    wrapper = functools.wraps(fn)(wrapper)
    setattr(wrapper, _IS_BOUNDARY, True)
    return wrapper


_IS_BOUNDARY = "_functorch_lite_api_boundary"

# One wrapper factory is compiled per distinct parameter list (all unary fnp functions
# share one). The wrapper's code claims a file inside the package, so its own frame is
# hidden too; its source is put in ``linecache`` for FL_SHOW_INTERNAL_FRAMES=1 tracebacks.
_WRAPPER_TEMPLATE = """\
def make(__fl_fn, __fl_hide):
    def api_boundary_wrapper({params}):
        try:
            return __fl_fn({call})
        except Exception as __fl_exc:
            __fl_hide(__fl_exc)
            raise
    return api_boundary_wrapper
"""
_factories: dict = {}


def _parameters(code):
    """``(params, call)``: source text of ``code``'s parameter list and of a forwarding call."""
    names = code.co_varnames
    n_pos, n_posonly, n_kwonly = code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount
    positional, kwonly = names[:n_pos], names[n_pos:n_pos + n_kwonly]
    rest = iter(names[n_pos + n_kwonly:])
    varargs = next(rest) if code.co_flags & inspect.CO_VARARGS else None
    varkw = next(rest) if code.co_flags & inspect.CO_VARKEYWORDS else None
    params = list(positional[:n_posonly]) + (["/"] if n_posonly else [])
    params += positional[n_posonly:]
    if varargs:
        params.append("*" + varargs)
    elif kwonly:
        params.append("*")
    params += kwonly
    call = list(positional) + (["*" + varargs] if varargs else [])
    call += [f"{k}={k}" for k in kwonly]
    if varkw:
        params.append("**" + varkw)
        call.append("**" + varkw)
    return ", ".join(params), ", ".join(call)


def _wrapper_factory(code):
    params, call = _parameters(code)
    factory = _factories.get(params)
    if factory is None:
        source = _WRAPPER_TEMPLATE.format(params=params, call=call)
        filename = f"{_PACKAGE_DIR}<api_boundary({params})>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = {}
        exec(compile(source, filename, "exec"), namespace)
        factory = _factories[params] = namespace["make"]
    return factory
