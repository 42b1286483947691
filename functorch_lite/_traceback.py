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

    The wrapper is built with ``fn``'s globals, so doctest still finds ``fn``'s docstring
    in ``fn``'s module (doctest skips functions whose globals belong to another module).

    Example:
        >>> import traceback
        >>> from functorch_lite._traceback import api_boundary
        >>> @api_boundary
        ... def ratio(a, b):
        ...     return a / b
        >>> try:
        ...     ratio(1, 0)
        ... except ZeroDivisionError as e:
        ...     print([f.name for f in traceback.extract_tb(e.__traceback__)])
        ['<module>', 'ratio']
    """
    hide = hide_internal_frames

    def api_boundary_wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            hide(e)
            raise

    code = api_boundary_wrapper.__code__
    globals_ = getattr(fn, "__globals__", None)
    if globals_ is not None:
        wrapper = types.FunctionType(code, globals_, code.co_name, None,
                                     api_boundary_wrapper.__closure__)
    else:  # a callable object: keep the wrapper as it is
        wrapper = api_boundary_wrapper
    return functools.wraps(fn)(wrapper)
