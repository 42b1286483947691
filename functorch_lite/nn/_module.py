"""``nn.Module``: a module holds hyperparameters and submodules; parameters and state are
pytrees that live outside it.

The protocol every module follows (``fl.train`` relies on it):

* ``params, state = module.init(key)`` — pure pytrees (dicts of arrays). ``state`` holds
  non-trained values that ``apply`` updates (BatchNorm running statistics); it has no
  leaves for most models.
* ``out, state = module.apply(params, state, x, *, key=None, train=False)`` — pure: same
  inputs, same outputs, under ``fl.jit``, ``fl.grad`` and ``fl.vmap``.
* ``forward(self, params, state, x, *, key, train)`` — the one method a subclass writes.
  It returns ``(out, state)``; a subclass that sets ``stateless = True`` returns just
  ``out`` (its state is passed through unchanged) and may be called ``layer(params, x)``.

A composite module's default ``init`` makes one entry per submodule attribute (in the
order they were assigned), in ``params`` and in ``state`` alike: ``params["fc1"]``; a list
of modules becomes a list. Override ``init`` to add parameters of your own.
"""

import functorch_lite.numpy as fnp
from functorch_lite import random
from functorch_lite import tree as tree_util

__all__ = ["Module", "Lambda", "count_params", "l2_penalty", "split_key"]


def split_key(key, num):
    """``num`` independent keys from ``key``, or ``num`` Nones when ``key`` is None (so a
    module can hand keys to its children whether or not it was given one).

    Example:
        >>> import functorch_lite as fl
        >>> len(split_key(fl.random.key(0), 3)), split_key(None, 2)
        (3, [None, None])
    """
    if key is None:
        return [None] * num
    return list(random.split(key, num)) if num else []


def _is_module_list(value):
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(v, Module) for v in value))


# Only the outermost apply walks the whole parameter tree against the module tree; the
# nested applies it makes would otherwise repeat that walk once per level.
_nested_applies = 0


class Module:
    """Base class of every layer and model (see the module docstring for the protocol).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import nn
        >>> class MLP(nn.Module):
        ...     def __init__(self, width):
        ...         self.hidden = nn.Linear(2, width)
        ...         self.out = nn.Linear(width, 1)
        ...     def forward(self, params, state, x, *, key, train):
        ...         h = nn.relu(self.hidden(params["hidden"], x))
        ...         return self.out(params["out"], h), state
        >>> model = MLP(8)
        >>> params, state = model.init(fl.random.key(0))
        >>> y, state = model.apply(params, state, fnp.ones((5, 2)))
        >>> y.shape, nn.count_params(params)
        ((5, 1), 33)
    """

    #: True: ``forward`` returns just ``out`` and the module is callable as ``m(params, x)``.
    stateless = False

    # ----------------------------------------------------------------------------------
    # What subclasses write
    # ----------------------------------------------------------------------------------
    def forward(self, params, state, x, *, key, train):
        raise NotImplementedError(
            f"{type(self).__name__}: a Module subclass must define forward(self, params, "
            f"state, x, *, key, train) returning (out, state)")

    def init(self, key):
        """``(params, state)``: one entry per submodule attribute, each from its own key."""
        children = self._children()
        keys = split_key(key, len(children))
        params, state = {}, {}
        for (name, child), child_key in zip(children, keys, strict=True):
            params[name], state[name] = _init_child(child, child_key)
        return params, state

    def extra_repr(self):
        """The hyperparameters shown inside ``Name(...)``; layers override it."""
        return ""

    # ----------------------------------------------------------------------------------
    # Running a module
    # ----------------------------------------------------------------------------------
    def apply(self, params, state, x, *, key=None, train=False, **kwargs):
        """Run the module: ``(out, new_state)``. ``key`` feeds Dropout and other random
        layers; ``train`` switches Dropout/BatchNorm to training behaviour. Extra keyword
        arguments go to ``forward`` (e.g. ``attn_mask`` of MultiHeadAttention)."""
        global _nested_applies
        if _nested_applies == 0:
            check_params(self, params, f"{type(self).__name__}.apply")
        # A forward may assign `state["bn"] = ...`: work on a copy of this level so the
        # caller's tree is never mutated.
        if type(state) is dict:
            state = dict(state)
        _nested_applies += 1
        try:
            out = self.forward(params, state, x, key=key, train=train, **kwargs)
        finally:
            _nested_applies -= 1
        if self.stateless:
            return out, state
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"{type(self).__name__}.forward must return (out, state); it returned a "
                f"{type(out).__name__}. Return `out, state`, or set `stateless = True` on "
                f"the class to return just `out`")
        return out

    def __call__(self, params, x, *, key=None, train=False, **kwargs):
        if not self.stateless:
            raise TypeError(
                f"{type(self).__name__} carries state (e.g. BatchNorm statistics), so it "
                f"cannot be called as layer(params, x); use "
                f"`out, state = layer.apply(params, state, x, train=...)`")
        return self.apply(params, {}, x, key=key, train=train, **kwargs)[0]

    # ----------------------------------------------------------------------------------
    # Introspection
    # ----------------------------------------------------------------------------------
    def _children(self):
        """``[(name, submodule or list of submodules)]`` in assignment order."""
        return [(name, value) for name, value in vars(self).items()
                if isinstance(value, Module) or _is_module_list(value)]

    def _param_keys(self):
        """The keys ``params`` must have, or None when a custom ``init`` decides them."""
        if type(self).init is not Module.init:
            return None
        return [name for name, _ in self._children()]

    def _check_structure(self, params, where, path):
        """Raise when ``params`` (this module's own level) has the wrong keys."""
        expected = self._param_keys()
        if expected is None:
            return
        if not isinstance(params, dict):
            raise ValueError(f"{where}: params{path} should be a dict with keys {expected}, "
                             f"got a {type(params).__name__} (params from a different model? "
                             f"make them with model.init(key))")
        missing = [k for k in expected if k not in params]
        unexpected = [k for k in params if k not in expected]
        if missing or unexpected:
            raise ValueError(
                f"{where}: params{path} do not match {type(self).__name__}: missing keys "
                f"{missing}, unexpected keys {unexpected} "
                f"(params from a different model? make them with model.init(key))")

    def _named_children(self):
        for name, child in self._children():
            if isinstance(child, Module):
                yield name, child, (name,)
            else:
                for i, sub in enumerate(child):
                    yield f"{name}[{i}]", sub, (name, i)

    def __repr__(self):
        children = list(self._named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for label, child, _ in children:
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({label}): {text}")
        return "\n".join(lines) + "\n)"

    def summary(self, params, x=None):
        """A table like ``print(model)`` in PyTorch with parameter shapes and counts.

        With an example input ``x`` (Sequential only) each layer's output shape is shown
        too (the layers run once, eagerly, in eval mode).
        """
        rows = []
        _summary_rows(self, params, type(self).__name__, 0, rows, self._output_shapes(params, x))
        width = max(len(label) for label, *_ in rows)
        lines = []
        for label, shapes, count, out_shape in rows:
            extra = f"  -> {out_shape}" if out_shape is not None else ""
            lines.append(f"{label.ljust(width)}  {count:>12,}  {shapes}{extra}".rstrip())
        return "\n".join([f"{'layer'.ljust(width)}  {'params':>12}  shapes", *lines,
                          f"Total params: {count_params(params):,}"])

    def _output_shapes(self, params, x):
        """``{id(submodule): output shape}`` for ``summary(params, x)``; Sequential has it."""
        if x is not None:
            raise ValueError(f"{type(self).__name__}.summary: output shapes (x=...) are "
                             f"shown for nn.Sequential only; call summary(params)")
        return {}


def _init_child(child, key):
    if isinstance(child, Module):
        return child.init(key)
    pairs = [sub.init(k) for sub, k in zip(child, split_key(key, len(child)), strict=True)]
    return [p for p, _ in pairs], [s for _, s in pairs]


def _summary_rows(module, params, label, depth, rows, out_shapes):
    own = {}
    if isinstance(params, dict):
        child_names = {name for name, _ in module._children()}
        own = {k: v for k, v in params.items() if k not in child_names}
    shapes = ", ".join(f"{k} {tuple(fnp.shape(v))}" for k, v in own.items()
                       if not isinstance(v, (dict, list, tuple)))
    one_line = f"{type(module).__name__}({module.extra_repr()})"
    out_shape = (out_shapes or {}).get(id(module))
    rows.append(("  " * depth + f"{label}: {one_line}" if depth else one_line, shapes,
                 count_params(params), out_shape))
    for child_label, child, path in module._named_children():
        child_params = params
        try:
            for step in path:
                child_params = child_params[step]
        except (KeyError, IndexError, TypeError):
            child_params = {}
        _summary_rows(child, child_params, f"({child_label})", depth + 1, rows, out_shapes)


def check_params(module, params, where, path=""):
    """Raise a ``ValueError`` naming the keys where ``params`` and ``module`` disagree."""
    module._check_structure(params, where, path)
    for label, child, steps in module._named_children():
        sub = params
        try:
            for step in steps:
                sub = sub[step]
        except (KeyError, IndexError, TypeError):
            raise ValueError(f"{where}: params{path} have no entry {label} for the submodule "
                             f"{type(child).__name__} (params from a different model? make "
                             f"them with model.init(key))") from None
        check_params(child, sub, where, path + "".join(f"[{s!r}]" for s in steps))


class Lambda(Module):
    """A parameterless function as a module: ``Lambda(fn)`` applies ``fn(x)``. Sequential
    wraps plain callables (``nn.relu``) in it.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> Lambda(fnp.abs)({}, fnp.array([-2.0]))
        Array([2.], dtype=float32)
    """

    stateless = True

    def __init__(self, fn):
        self.fn = fn

    def extra_repr(self):
        return getattr(self.fn, "__name__", repr(self.fn))

    def forward(self, params, state, x, *, key, train):
        return self.fn(x)


def count_params(params):
    """The number of scalar parameters in a pytree (``sum(p.numel() ...)`` in PyTorch).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> count_params({"w": fnp.zeros((3, 4)), "b": fnp.zeros(4), "empty": {}})
        16
    """
    return sum(int(fnp.size(leaf)) for leaf in tree_util.leaves(params))


def l2_penalty(params):
    """``sum(p ** 2)`` over every floating-point leaf: add ``0.5 * wd * l2_penalty(params)``
    to a loss for the gradient ``wd * p`` of PyTorch's ``weight_decay``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> l2_penalty({"w": fnp.array([1.0, 2.0]), "b": fnp.array([2.0])})
        Array(9., dtype=float32)
    """
    terms = [fnp.sum(fnp.square(leaf)) for leaf in tree_util.leaves(params)
             if fnp.issubdtype(fnp.asarray(leaf).dtype, fnp.floating)]
    if not terms:
        return fnp.zeros(())
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total
