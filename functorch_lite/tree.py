"""Pytrees: nested containers of leaves, and functions that work on their leaves.

A pytree is a value built from registered *node* types (tuples, lists, dicts,
namedtuples, ``None``, ``OrderedDict``, ``defaultdict``, registered dataclasses
and custom classes) whose non-node parts are *leaves* (arrays, scalars, strings,
anything else). The semantics follow ``jax.tree_util`` / ``jax.tree``, so JAX
code ports by replacing ``jax.tree`` with ``fl.tree``:

* dicts are flattened in sorted key order and rebuilt in sorted key order;
* ``None`` is a node with no children, so it holds no leaves;
* the structure of a tree is a :class:`PyTreeDef`, which is hashable and
  compares by value, so it can be used as a cache key.

Example:
    >>> from functorch_lite import tree
    >>> leaves, treedef = tree.flatten({"b": [1, 2], "a": 3})
    >>> leaves
    [3, 1, 2]
    >>> treedef
    PyTreeDef({'a': *, 'b': [*, *]})
    >>> tree.unflatten(treedef, [30, 10, 20])
    {'a': 30, 'b': [10, 20]}
"""

from __future__ import annotations

import builtins
import collections
import dataclasses
import functools
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

__all__ = [
    "PyTreeDef",
    "DictKey",
    "SequenceKey",
    "GetAttrKey",
    "FlattenedIndexKey",
    "keystr",
    "flatten",
    "unflatten",
    "leaves",
    "structure",
    "map",
    "flatten_with_path",
    "leaves_with_path",
    "map_with_path",
    "all",
    "reduce",
    "transpose",
    "ravel",
    "register_node",
    "register_node_with_keys",
    "register_dataclass",
]

IsLeaf = Callable[[Any], bool] | None


# --------------------------------------------------------------------------- keys


class _KeyEntry:
    """Base of the key-path entries; ``_simple_str`` is what ``keystr(simple=True)`` uses."""

    __slots__ = ()

    def _simple_str(self) -> str:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True, slots=True)
class DictKey(_KeyEntry):
    """Path entry for a dict-like child, printed as ``['key']``.

    Example:
        >>> from functorch_lite import tree
        >>> str(tree.DictKey("w"))
        "['w']"
    """

    key: Hashable

    def __str__(self) -> str:
        return f"[{self.key!r}]"

    def _simple_str(self) -> str:
        return str(self.key)


@dataclasses.dataclass(frozen=True, slots=True)
class SequenceKey(_KeyEntry):
    """Path entry for a tuple or list child, printed as ``[0]``.

    Example:
        >>> from functorch_lite import tree
        >>> str(tree.SequenceKey(0))
        '[0]'
    """

    idx: int

    def __str__(self) -> str:
        return f"[{self.idx}]"

    def _simple_str(self) -> str:
        return str(self.idx)


@dataclasses.dataclass(frozen=True, slots=True)
class GetAttrKey(_KeyEntry):
    """Path entry for an attribute (namedtuple or dataclass field), printed as ``.name``.

    Example:
        >>> from functorch_lite import tree
        >>> str(tree.GetAttrKey("weight"))
        '.weight'
    """

    name: str

    def __str__(self) -> str:
        return f".{self.name}"

    def _simple_str(self) -> str:
        return self.name


@dataclasses.dataclass(frozen=True, slots=True)
class FlattenedIndexKey(_KeyEntry):
    """Path entry for the n-th child of a custom node registered without keys.

    Example:
        >>> from functorch_lite import tree
        >>> str(tree.FlattenedIndexKey(1))
        '[<flat index 1>]'
    """

    key: int

    def __str__(self) -> str:
        return f"[<flat index {self.key}>]"

    def _simple_str(self) -> str:
        return str(self.key)


def keystr(keys: Sequence[Any], *, simple: bool = False, separator: str = "") -> str:
    """Format a key path (as produced by :func:`flatten_with_path`) as a string.

    Args:
        keys: A sequence of key entries (``DictKey``, ``SequenceKey``, ...) or of
            any objects, which are formatted with ``str``.
        simple: If True, format each entry plainly (``w`` instead of ``['w']``,
            ``0`` instead of ``[0]``, ``weight`` instead of ``.weight``).
        separator: The string placed between the formatted entries.

    Returns:
        The joined string.

    Example:
        >>> from functorch_lite import tree
        >>> path = (tree.DictKey("layers"), tree.SequenceKey(0), tree.DictKey("w"))
        >>> tree.keystr(path)
        "['layers'][0]['w']"
        >>> tree.keystr(path, simple=True, separator="/")
        'layers/0/w'
    """
    if simple:
        parts = [k._simple_str() if isinstance(k, _KeyEntry) else str(k) for k in keys]
    else:
        parts = [str(k) for k in keys]
    return separator.join(parts)


# --------------------------------------------------------------------- node kinds


class _NodeKind:
    """How one node type is taken apart and put back together.

    ``flatten(obj) -> (children, aux)`` must return a sized, re-iterable sequence
    of children; ``flatten_with_keys(obj) -> ([(key, child), ...], aux)`` the same
    children with their path entries; ``unflatten(aux, children)`` receives the
    children as a fresh list. ``aux`` is the node's static data: it becomes part of
    the treedef, so it must be hashable and comparable.
    """

    __slots__ = (
        "type",
        "noun",
        "flatten",
        "flatten_with_keys",
        "unflatten",
        "format_node",
        "describe_aux",
    )

    def __init__(
        self,
        node_type,
        *,
        noun,
        flatten,
        flatten_with_keys,
        unflatten,
        format_node,
        describe_aux=lambda aux: f"auxiliary data {aux!r}",
    ):
        self.type = node_type
        self.noun = noun  # how error messages name a value of this type, e.g. "a dict"
        self.flatten = flatten
        self.flatten_with_keys = flatten_with_keys
        self.unflatten = unflatten
        self.format_node = format_node  # (aux, list of child reprs) -> repr of the node
        self.describe_aux = describe_aux  # aux -> text for structure-mismatch errors


def _sequence_keys(children):
    return [(SequenceKey(i), child) for i, child in enumerate(children)]


def _sorted_dict_keys(d) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError:
        raise ValueError(
            f"functorch_lite.tree: cannot flatten a {type(d).__name__} whose keys "
            f"{list(d)!r} cannot be sorted. Pytree dicts are flattened in sorted key "
            "order so that their structure does not depend on insertion order; use keys "
            "of one comparable type, or an OrderedDict, which keeps insertion order."
        ) from None


def _format_dict_body(keys, child_reprs) -> str:
    return "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(keys, child_reprs, strict=True)) + "}"


def _format_tuple(child_reprs) -> str:
    trailing_comma = "," if len(child_reprs) == 1 else ""
    return "(" + ", ".join(child_reprs) + trailing_comma + ")"


def _flatten_dict(d):
    keys = _sorted_dict_keys(d)
    return [d[k] for k in keys], keys


def _flatten_dict_with_keys(d):
    keys = _sorted_dict_keys(d)
    return [(DictKey(k), d[k]) for k in keys], keys


def _flatten_defaultdict(d):
    keys = _sorted_dict_keys(d)
    return [d[k] for k in keys], (d.default_factory, keys)


def _flatten_defaultdict_with_keys(d):
    keys = _sorted_dict_keys(d)
    return [(DictKey(k), d[k]) for k in keys], (d.default_factory, keys)


_BUILTIN_KINDS = [
    _NodeKind(
        tuple,
        noun="a tuple",
        flatten=lambda t: (t, None),
        flatten_with_keys=lambda t: (_sequence_keys(t), None),
        unflatten=lambda _aux, children: tuple(children),
        format_node=lambda _aux, reprs: _format_tuple(reprs),
    ),
    _NodeKind(
        list,
        noun="a list",
        flatten=lambda lst: (lst, None),
        flatten_with_keys=lambda lst: (_sequence_keys(lst), None),
        unflatten=lambda _aux, children: children,
        format_node=lambda _aux, reprs: "[" + ", ".join(reprs) + "]",
    ),
    _NodeKind(
        dict,
        noun="a dict",
        flatten=_flatten_dict,
        flatten_with_keys=_flatten_dict_with_keys,
        unflatten=lambda keys, children: dict(zip(keys, children, strict=True)),
        format_node=_format_dict_body,
        describe_aux=lambda keys: f"keys {list(keys)!r}",
    ),
    _NodeKind(
        type(None),
        noun="None",
        flatten=lambda _none: ((), None),
        flatten_with_keys=lambda _none: ([], None),
        unflatten=lambda _aux, _children: None,
        format_node=lambda _aux, _reprs: "None",
    ),
    _NodeKind(
        collections.OrderedDict,
        noun="an OrderedDict",
        flatten=lambda d: (list(d.values()), tuple(d)),
        flatten_with_keys=lambda d: ([(DictKey(k), v) for k, v in d.items()], tuple(d)),
        unflatten=lambda keys, children: collections.OrderedDict(zip(keys, children, strict=True)),
        format_node=lambda keys, reprs: f"OrderedDict({_format_dict_body(keys, reprs)})",
        describe_aux=lambda keys: f"keys {list(keys)!r} (in this order)",
    ),
    _NodeKind(
        collections.defaultdict,
        noun="a defaultdict",
        flatten=_flatten_defaultdict,
        flatten_with_keys=_flatten_defaultdict_with_keys,
        unflatten=lambda aux, children: collections.defaultdict(
            aux[0], zip(aux[1], children, strict=True)
        ),
        format_node=lambda aux, reprs: (
            f"defaultdict({aux[0]!r}, {_format_dict_body(aux[1], reprs)})"
        ),
        describe_aux=lambda aux: f"default_factory {aux[0]!r} and keys {list(aux[1])!r}",
    ),
]

# Types registered as nodes, explicitly or built in; used to reject duplicates.
_registered_kinds: dict[type, _NodeKind] = {kind.type: kind for kind in _BUILTIN_KINDS}

# Exact type -> its node kind, or None for leaf types. Lookups by exact type keep
# flattening to one dict probe per value; namedtuple classes and leaf types are
# classified on first sight and cached here. Entries live as long as the process,
# which is fine for the handful of types a program puts in its trees.
_kind_cache: dict[type, _NodeKind | None] = dict(_registered_kinds)
_UNSEEN = object()


def _namedtuple_kind(cls) -> _NodeKind:
    fields = cls._fields
    field_keys = [GetAttrKey(name) for name in fields]
    return _NodeKind(
        cls,
        noun=f"a {cls.__name__} namedtuple",
        flatten=lambda t: (t, None),
        flatten_with_keys=lambda t: (list(zip(field_keys, t, strict=True)), None),
        unflatten=lambda _aux, children: cls(*children),
        format_node=lambda _aux, reprs: (
            f"{cls.__name__}("
            + ", ".join(f"{f}={r}" for f, r in zip(fields, reprs, strict=True))
            + ")"
        ),
    )


def _kind_of(cls: type) -> _NodeKind | None:
    """The node kind of values of exact type ``cls``, or None when they are leaves."""
    kind = _kind_cache.get(cls, _UNSEEN)
    if kind is _UNSEEN:
        # Like JAX, any tuple subclass with ``_fields`` counts as a namedtuple node;
        # other subclasses of built-in containers are leaves unless registered.
        is_namedtuple = issubclass(cls, tuple) and hasattr(cls, "_fields")
        kind = _namedtuple_kind(cls) if is_namedtuple else None
        _kind_cache[cls] = kind
    return kind


def _is_plain_namedtuple(cls: type) -> bool:
    """Whether values of exact type ``cls`` flatten as a namedtuple: their fields, in
    order, with no registered flattening of their own (jit's fast call path)."""
    return (cls not in _registered_kinds and issubclass(cls, tuple)
            and hasattr(cls, "_fields"))


def _register_kind(kind: _NodeKind, caller: str) -> None:
    if not isinstance(kind.type, type):
        raise TypeError(f"{caller}: expected a class to register, got {kind.type!r}.")
    if kind.type in _registered_kinds:
        raise ValueError(
            f"{caller}: {kind.type.__qualname__} is already registered as a pytree node. "
            "A type can be registered only once; register a subclass if you need "
            "different flattening."
        )
    _registered_kinds[kind.type] = kind
    _kind_cache[kind.type] = kind


def register_node(cls: type, flatten: Callable, unflatten: Callable) -> type:
    """Register a class as a pytree node (``jax.tree_util.register_pytree_node``).

    Children of the node get :class:`FlattenedIndexKey` entries in key paths; use
    :func:`register_node_with_keys` for meaningful names.

    Args:
        cls: The class to register. Only instances of exactly this class are
            nodes; subclasses need their own registration.
        flatten: ``flatten(obj) -> (children, aux_data)``, where ``children`` is an
            iterable of subtrees and ``aux_data`` is hashable static data that is
            stored in the treedef.
        unflatten: ``unflatten(aux_data, children) -> obj``; ``children`` is a tuple.

    Returns:
        ``cls``, unchanged.

    Raises:
        ValueError: If ``cls`` is already registered.

    Example:
        >>> from functorch_lite import tree
        >>> class Pair:
        ...     def __init__(self, first, second):
        ...         self.first, self.second = first, second
        >>> _ = tree.register_node(
        ...     Pair,
        ...     lambda p: ((p.first, p.second), None),
        ...     lambda _aux, children: Pair(*children),
        ... )
        >>> tree.leaves([Pair(1, 2), 3])
        [1, 2, 3]
    """

    def flatten_to_tuple(obj):
        children, aux = flatten(obj)
        return tuple(children), aux

    def flatten_with_index_keys(obj):
        children, aux = flatten(obj)
        return [(FlattenedIndexKey(i), child) for i, child in enumerate(children)], aux

    _register_kind(
        _custom_kind(cls, flatten_to_tuple, flatten_with_index_keys, unflatten), "register_node"
    )
    return cls


def register_node_with_keys(
    cls: type,
    flatten_with_keys: Callable,
    unflatten: Callable,
    flatten: Callable | None = None,
) -> type:
    """Register a class as a pytree node whose children have named key-path entries.

    This is ``jax.tree_util.register_pytree_with_keys``.

    Args:
        cls: The class to register (exact type, as in :func:`register_node`).
        flatten_with_keys: ``flatten_with_keys(obj) -> (keyed_children, aux_data)``
            where ``keyed_children`` is an iterable of ``(key_entry, child)`` pairs.
        unflatten: ``unflatten(aux_data, children) -> obj``; ``children`` is a tuple.
        flatten: Optional faster ``flatten(obj) -> (children, aux_data)`` used when
            no paths are needed. It must return the same children and aux_data as
            ``flatten_with_keys``; by default it is derived from it.

    Returns:
        ``cls``, unchanged.

    Raises:
        ValueError: If ``cls`` is already registered.

    Example:
        >>> from functorch_lite import tree
        >>> class Linear:
        ...     def __init__(self, weight, bias):
        ...         self.weight, self.bias = weight, bias
        >>> _ = tree.register_node_with_keys(
        ...     Linear,
        ...     lambda m: (((tree.GetAttrKey("weight"), m.weight),
        ...                 (tree.GetAttrKey("bias"), m.bias)), None),
        ...     lambda _aux, children: Linear(*children),
        ... )
        >>> [tree.keystr(path) for path, _ in tree.leaves_with_path(Linear(1.0, 0.0))]
        ['.weight', '.bias']
    """

    def flatten_with_keys_to_list(obj):
        keyed_children, aux = flatten_with_keys(obj)
        return list(keyed_children), aux

    if flatten is None:

        def flatten_to_tuple(obj):
            keyed_children, aux = flatten_with_keys(obj)
            return tuple(child for _, child in keyed_children), aux

    else:

        def flatten_to_tuple(obj):
            children, aux = flatten(obj)
            return tuple(children), aux

    _register_kind(
        _custom_kind(cls, flatten_to_tuple, flatten_with_keys_to_list, unflatten),
        "register_node_with_keys",
    )
    return cls


def _custom_kind(cls, flatten, flatten_with_keys, unflatten) -> _NodeKind:
    return _NodeKind(
        cls,
        noun=f"a {getattr(cls, '__qualname__', cls)} node",
        flatten=flatten,
        flatten_with_keys=flatten_with_keys,
        unflatten=lambda aux, children: unflatten(aux, tuple(children)),
        format_node=lambda aux, reprs: (
            f"CustomNode({cls.__qualname__}[{aux!r}], [{', '.join(reprs)}])"
        ),
    )


def register_dataclass(
    nodetype: type,
    data_fields: Sequence[str] | None = None,
    meta_fields: Sequence[str] | None = None,
    drop_fields: Sequence[str] = (),
) -> type:
    """Register a dataclass (or any class) as a pytree node with named fields.

    Data fields are the node's children; meta fields are static: their values are
    stored in the treedef (so they must be hashable), and a different value gives
    a different treedef. Nodes are rebuilt by calling ``nodetype(**fields)``.
    Key paths use :class:`GetAttrKey`.

    With neither ``data_fields`` nor ``meta_fields`` given, ``nodetype`` must be a
    dataclass: its ``init`` fields declared with
    ``dataclasses.field(metadata={"static": True})`` are meta fields and the other
    ``init`` fields are data fields. Usable as a class decorator.

    Args:
        nodetype: The class to register.
        data_fields: Names of the attributes that are children.
        meta_fields: Names of the attributes that are static data.
        drop_fields: ``init`` fields of a dataclass that are neither; they are not
            passed when rebuilding, so they take their defaults.

    Returns:
        ``nodetype``, unchanged.

    Raises:
        TypeError: If only one of ``data_fields`` and ``meta_fields`` is given, if
            neither is given and ``nodetype`` is not a dataclass, or if the fields do
            not match the dataclass's ``init`` fields.
        ValueError: If ``nodetype`` is already registered.

    Example:
        >>> import dataclasses
        >>> from functorch_lite import tree
        >>> @tree.register_dataclass
        ... @dataclasses.dataclass
        ... class Dense:
        ...     weight: object
        ...     bias: object
        ...     activation: str = dataclasses.field(default="relu", metadata={"static": True})
        >>> leaves, treedef = tree.flatten(Dense(1.0, 0.0))
        >>> leaves
        [1.0, 0.0]
        >>> treedef
        PyTreeDef(Dense(weight=*, bias=*, activation='relu'))
    """
    if (data_fields is None) != (meta_fields is None):
        raise TypeError(
            "register_dataclass: data_fields and meta_fields must be given together "
            f"(got data_fields={data_fields!r}, meta_fields={meta_fields!r}). Pass both, "
            "or neither to read them from the dataclass's field metadata."
        )
    init_fields = None
    if dataclasses.is_dataclass(nodetype):
        init_fields = [f.name for f in dataclasses.fields(nodetype) if f.init]
    if data_fields is None:
        if init_fields is None:
            raise TypeError(
                f"register_dataclass: {nodetype!r} is not a dataclass, so its fields cannot "
                "be inferred. Decorate it with @dataclasses.dataclass first, or pass "
                "data_fields and meta_fields explicitly."
            )
        static = {f.name for f in dataclasses.fields(nodetype) if f.metadata.get("static", False)}
        data_fields = [n for n in init_fields if n not in static and n not in drop_fields]
        meta_fields = [n for n in init_fields if n in static and n not in drop_fields]
    data_fields, meta_fields = tuple(data_fields), tuple(meta_fields)
    if init_fields is not None:
        declared = [*data_fields, *meta_fields, *drop_fields]
        if sorted(declared) != sorted(init_fields):
            raise TypeError(
                f"register_dataclass: data_fields {list(data_fields)}, meta_fields "
                f"{list(meta_fields)} and drop_fields {list(drop_fields)} of "
                f"{nodetype.__qualname__} must name each of its init fields {init_fields} "
                "exactly once."
            )

    field_keys = [GetAttrKey(name) for name in data_fields]

    def flatten(obj):
        return ([getattr(obj, n) for n in data_fields], tuple(getattr(obj, n) for n in meta_fields))

    def flatten_with_keys(obj):
        return (
            [(key, getattr(obj, n)) for key, n in zip(field_keys, data_fields, strict=True)],
            tuple(getattr(obj, n) for n in meta_fields),
        )

    def unflatten(meta_values, children):
        data = dict(zip(data_fields, children, strict=True))
        meta = dict(zip(meta_fields, meta_values, strict=True))
        return nodetype(**data, **meta)

    def format_node(meta_values, reprs):
        fields = [f"{n}={r}" for n, r in zip(data_fields, reprs, strict=True)]
        fields += [f"{n}={v!r}" for n, v in zip(meta_fields, meta_values, strict=True)]
        return f"{nodetype.__name__}({', '.join(fields)})"

    kind = _NodeKind(
        nodetype,
        noun=f"a {nodetype.__qualname__} dataclass",
        flatten=flatten,
        flatten_with_keys=flatten_with_keys,
        unflatten=unflatten,
        format_node=format_node,
        describe_aux=lambda meta_values: (
            f"static fields {dict(zip(meta_fields, meta_values, strict=True))!r}"
        ),
    )
    _register_kind(kind, "register_dataclass")
    return nodetype


# ---------------------------------------------------------------------- PyTreeDef


class _StructureMismatch(Exception):
    """Raised inside ``_flatten_up_to``; each enclosing node adds its key on the way out.

    Building the path only on failure keeps the matching loop free of per-node key
    objects.
    """

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail
        self.reversed_path: list = []

    def path_str(self) -> str:
        path = keystr(self.reversed_path[::-1])
        return f"key path {path}" if path else "the root"


def _short_repr(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_value(value) -> str:
    kind = _kind_of(type(value))
    if kind is None:
        return f"a leaf of type {type(value).__qualname__} ({_short_repr(value)})"
    return kind.noun


class PyTreeDef:
    """The structure of a pytree: its node types, static data and where leaves go.

    Treedefs are immutable, compare equal when the trees have the same structure,
    and cache their hash, so they are cheap cache keys (e.g. for ``jit``). Get one
    from :func:`flatten` or :func:`structure`.

    Example:
        >>> from functorch_lite import tree
        >>> treedef = tree.structure({"a": 1, "b": [2, 3]})
        >>> treedef
        PyTreeDef({'a': *, 'b': [*, *]})
        >>> treedef.num_leaves, treedef.num_nodes
        (3, 5)
        >>> treedef == tree.structure({"b": [0, 0], "a": 0})
        True
    """

    __slots__ = ("_kind", "_aux", "_children", "_num_leaves", "_num_nodes", "_hash")

    def __init__(self, kind: _NodeKind | None, aux: Any, children: tuple, num_leaves: int):
        # kind is None for a leaf. Children are PyTreeDefs.
        self._kind = kind
        self._aux = aux
        self._children = children
        self._num_leaves = num_leaves
        self._num_nodes = None  # computed on first use
        self._hash = None  # computed on first use

    @property
    def num_leaves(self) -> int:
        """The number of leaves in trees of this structure."""
        return self._num_leaves

    @property
    def num_nodes(self) -> int:
        """The number of nodes, counting leaves and ``None`` as nodes (as JAX does)."""
        if self._num_nodes is None:
            self._num_nodes = 1 + sum(child.num_nodes for child in self._children)
        return self._num_nodes

    def children(self) -> list[PyTreeDef]:
        """The treedefs of the root node's children (empty for a leaf).

        Example:
            >>> from functorch_lite import tree
            >>> tree.structure((1, [2, 3])).children()
            [PyTreeDef(*), PyTreeDef([*, *])]
        """
        return list(self._children)

    def node_data(self) -> tuple[type, Any] | None:
        """``(node_type, aux_data)`` of the root node, or None when the root is a leaf.

        Example:
            >>> from functorch_lite import tree
            >>> tree.structure({"b": 1, "a": 2}).node_data()
            (<class 'dict'>, ('a', 'b'))
        """
        if self._kind is None:
            return None
        return self._kind.type, self._aux

    def _list_builder(self):
        """A function ``fresh_list_of_leaves -> tree``, without ``unflatten``'s checks: for a
        one-level structure (a container of leaves) the node's own constructor. Callers
        (jit's call path) pass exactly ``num_leaves`` values in a list they own."""
        if self._kind is not None and builtins.all(c._kind is None for c in self._children):
            return functools.partial(self._kind.unflatten, self._aux)
        return self.unflatten

    def unflatten(self, leaves: Iterable[Any]) -> Any:
        """Build a tree of this structure from leaves in flattening order.

        Args:
            leaves: Exactly ``num_leaves`` values.

        Returns:
            The rebuilt tree.

        Raises:
            ValueError: If the number of leaves is wrong.

        Example:
            >>> from functorch_lite import tree
            >>> tree.structure([0, (0, 0)]).unflatten(["a", "b", "c"])
            ['a', ('b', 'c')]
        """
        leaves = list(leaves)
        if len(leaves) != self._num_leaves:
            raise ValueError(
                f"unflatten: {_short_repr(self, 200)} has {self._num_leaves} leaves but "
                f"{len(leaves)} were given. Pass exactly one value per leaf, in the order "
                "flatten returns them."
            )
        return self._build(iter(leaves))

    def _build(self, leaf_iter):
        if self._kind is None:
            return next(leaf_iter)
        children = [
            next(leaf_iter) if child._kind is None else child._build(leaf_iter)
            for child in self._children
        ]
        return self._kind.unflatten(self._aux, children)

    def flatten_up_to(self, tree: Any) -> list[Any]:
        """Flatten ``tree`` only as deep as this structure goes.

        ``tree`` must have this structure as a prefix: every node of the treedef
        must be present in ``tree`` with the same type and static data, and
        wherever the treedef has a leaf, ``tree`` may hold any subtree, which is
        returned whole.

        Args:
            tree: The tree to split.

        Returns:
            A list of ``num_leaves`` subtrees of ``tree``.

        Raises:
            ValueError: If ``tree`` does not have this structure as a prefix; the
                message gives the key path where they differ.

        Example:
            >>> from functorch_lite import tree
            >>> tree.structure([0, 0]).flatten_up_to([(1, 2), {"a": 3}])
            [(1, 2), {'a': 3}]
        """
        try:
            return _flatten_up_to(self, tree)
        except _StructureMismatch as mismatch:
            raise ValueError(
                f"PyTreeDef.flatten_up_to: the tree does not match {_short_repr(self, 200)} "
                f"at {mismatch.path_str()}: {mismatch.detail}. The tree must have the "
                "treedef's nodes everywhere the treedef has nodes (it may have whole "
                "subtrees where the treedef has leaves)."
            ) from None

    def compose(self, inner: PyTreeDef) -> PyTreeDef:
        """The structure obtained by putting a tree of structure ``inner`` at every leaf.

        Example:
            >>> from functorch_lite import tree
            >>> tree.structure([0, 0]).compose(tree.structure((0, 0)))
            PyTreeDef([(*, *), (*, *)])
        """
        if self._kind is None:
            return inner
        children = tuple([child.compose(inner) for child in self._children])
        return PyTreeDef(self._kind, self._aux, children, self._num_leaves * inner._num_leaves)

    def __eq__(self, other):
        if self is other:
            return True
        if not isinstance(other, PyTreeDef):
            return NotImplemented
        if self._num_leaves != other._num_leaves:
            return False
        if self._hash is not None and other._hash is not None and self._hash != other._hash:
            return False
        return (
            self._kind is other._kind
            and bool(self._aux == other._aux)
            and self._children == other._children
        )

    def __hash__(self):
        if self._hash is None:
            # Node kinds are unique per type, so hashing the kind hashes the type.
            self._hash = hash((self._kind, self._aux, self._children))
        return self._hash

    def __repr__(self):
        return f"PyTreeDef({self._format()})"

    def _format(self) -> str:
        if self._kind is None:
            return "*"
        return self._kind.format_node(self._aux, [child._format() for child in self._children])


_LEAF = PyTreeDef(None, None, (), 1)


def _flatten_up_to(treedef: PyTreeDef, tree: Any) -> list[Any]:
    subtrees: list[Any] = []
    _flatten_up_to_into(treedef, tree, subtrees)
    return subtrees


def _flatten_up_to_into(treedef: PyTreeDef, tree: Any, subtrees: list) -> None:
    kind = treedef._kind
    if kind is None:
        subtrees.append(tree)
        return
    if type(tree) is not kind.type:
        raise _StructureMismatch(f"expected {kind.noun}, got {_describe_value(tree)}")
    children, aux = kind.flatten(tree)
    if bool(aux != treedef._aux):
        raise _StructureMismatch(
            f"expected {kind.noun} with {kind.describe_aux(treedef._aux)}, "
            f"got one with {kind.describe_aux(aux)}"
        )
    if len(children) != len(treedef._children):
        raise _StructureMismatch(
            f"expected {kind.noun} with {len(treedef._children)} children, "
            f"got one with {len(children)}"
        )
    for index, (child_def, child) in enumerate(zip(treedef._children, children, strict=True)):
        if child_def._kind is None:
            subtrees.append(child)
            continue
        try:
            _flatten_up_to_into(child_def, child, subtrees)
        except _StructureMismatch as mismatch:
            keyed_children, _ = kind.flatten_with_keys(tree)
            mismatch.reversed_path.append(keyed_children[index][0])
            raise


# ----------------------------------------------------------------------- flatten


def _flatten_into(node: Any, is_leaf: IsLeaf, out: list) -> PyTreeDef:
    if is_leaf is not None and is_leaf(node):
        out.append(node)
        return _LEAF
    # Inlined fast path of _kind_of: this line runs once per leaf.
    kind = _kind_cache.get(type(node), _UNSEEN)
    if kind is _UNSEEN:
        kind = _kind_of(type(node))
    if kind is None:
        out.append(node)
        return _LEAF
    first_leaf = len(out)
    children, aux = kind.flatten(node)
    child_defs = tuple([_flatten_into(child, is_leaf, out) for child in children])
    return PyTreeDef(kind, aux, child_defs, len(out) - first_leaf)


def flatten(tree: Any, is_leaf: IsLeaf = None) -> tuple[list[Any], PyTreeDef]:
    """Split a tree into its leaves and its structure.

    Args:
        tree: The pytree to flatten.
        is_leaf: Optional predicate called on every subtree, the root included,
            before it is taken apart; where it returns True the subtree is a leaf.

    Returns:
        ``(leaves, treedef)``: the leaves in order (dicts by sorted key) and the
        structure, from which :func:`unflatten` rebuilds the tree.

    Raises:
        ValueError: If a dict's keys cannot be sorted.

    Example:
        >>> from functorch_lite import tree
        >>> tree.flatten([1, (2, None), {"x": 3}])
        ([1, 2, 3], PyTreeDef([*, (*, None), {'x': *}]))
        >>> tree.flatten([1, (2, 3)], is_leaf=lambda x: isinstance(x, tuple))
        ([1, (2, 3)], PyTreeDef([*, *]))
    """
    flat: list[Any] = []
    treedef = _flatten_into(tree, is_leaf, flat)
    return flat, treedef


def unflatten(treedef: PyTreeDef, leaves: Iterable[Any]) -> Any:
    """Rebuild a tree from its structure and leaves (the inverse of :func:`flatten`).

    Args:
        treedef: The structure, from :func:`flatten` or :func:`structure`.
        leaves: Exactly ``treedef.num_leaves`` values, in flattening order.

    Returns:
        The tree.

    Raises:
        ValueError: If the number of leaves is wrong.

    Example:
        >>> from functorch_lite import tree
        >>> leaves, treedef = tree.flatten({"a": 1, "b": (2, 3)})
        >>> tree.unflatten(treedef, [x * 10 for x in leaves])
        {'a': 10, 'b': (20, 30)}
    """
    if not isinstance(treedef, PyTreeDef):
        raise TypeError(
            f"unflatten: expected a PyTreeDef as the first argument, got "
            f"{type(treedef).__qualname__}. The order is unflatten(treedef, leaves)."
        )
    return treedef.unflatten(leaves)


def leaves(tree: Any, is_leaf: IsLeaf = None) -> list[Any]:
    """The leaves of a tree, in flattening order.

    Args:
        tree: The pytree.
        is_leaf: Optional predicate marking subtrees to treat as leaves.

    Returns:
        A list of leaves.

    Example:
        >>> from functorch_lite import tree
        >>> tree.leaves({"b": [2, 3], "a": 1, "c": None})
        [1, 2, 3]
    """
    return flatten(tree, is_leaf)[0]


def structure(tree: Any, is_leaf: IsLeaf = None) -> PyTreeDef:
    """The structure (treedef) of a tree.

    Args:
        tree: The pytree.
        is_leaf: Optional predicate marking subtrees to treat as leaves.

    Returns:
        A :class:`PyTreeDef`.

    Example:
        >>> from functorch_lite import tree
        >>> tree.structure((1, {"a": 2}))
        PyTreeDef((*, {'a': *}))
    """
    return flatten(tree, is_leaf)[1]


def _flatten_rest(treedef: PyTreeDef, rest: tuple, caller: str) -> list[list[Any]]:
    """Flatten each tree in ``rest`` up to ``treedef``, naming ``caller`` on mismatch."""
    flat_rest = []
    for position, other in enumerate(rest):
        try:
            flat_rest.append(_flatten_up_to(treedef, other))
        except _StructureMismatch as mismatch:
            raise ValueError(
                f"{caller}: rest[{position}] does not match the structure of the first tree "
                f"at {mismatch.path_str()}: {mismatch.detail}. Every tree in rest must have "
                f"the first tree's structure, {_short_repr(treedef, 200)}, though it may "
                "have whole subtrees where the first tree has leaves."
            ) from None
    return flat_rest


def map(f: Callable, tree: Any, *rest: Any, is_leaf: IsLeaf = None) -> Any:
    """Apply ``f`` to the leaves of one or more trees, keeping the structure.

    Args:
        f: Called as ``f(leaf, *rest_leaves)`` once per leaf of ``tree``.
        tree: The tree whose leaves ``f`` is applied to; its structure is the
            result's structure.
        *rest: Further trees, each with the structure of ``tree`` or with that
            structure as a prefix (a subtree in place of a leaf of ``tree`` is
            passed to ``f`` whole).
        is_leaf: Optional predicate marking subtrees of ``tree`` to treat as leaves.

    Returns:
        A tree of the structure of ``tree`` holding the results of ``f``.

    Raises:
        ValueError: If a tree in ``rest`` does not have ``tree``'s structure as a
            prefix; the message names the key path where they differ.

    Example:
        >>> from functorch_lite import tree
        >>> tree.map(lambda x: x + 1, {"a": 1, "b": (2, 3)})
        {'a': 2, 'b': (3, 4)}
        >>> tree.map(lambda x, y: x * y, [1, 2], [10, 20])
        [10, 40]
    """
    flat, treedef = flatten(tree, is_leaf)
    if not rest:
        return treedef.unflatten([f(leaf) for leaf in flat])
    flat_rest = _flatten_rest(treedef, rest, "map")
    return treedef.unflatten([f(*xs) for xs in zip(flat, *flat_rest, strict=True)])


# ------------------------------------------------------------------------- paths


def _flatten_with_path_into(node: Any, path: tuple, is_leaf: IsLeaf, out: list) -> PyTreeDef:
    if is_leaf is not None and is_leaf(node):
        out.append((path, node))
        return _LEAF
    kind = _kind_of(type(node))
    if kind is None:
        out.append((path, node))
        return _LEAF
    first_leaf = len(out)
    keyed_children, aux = kind.flatten_with_keys(node)
    child_defs = tuple(
        [
            _flatten_with_path_into(child, (*path, key), is_leaf, out)
            for key, child in keyed_children
        ]
    )
    return PyTreeDef(kind, aux, child_defs, len(out) - first_leaf)


def flatten_with_path(
    tree: Any, is_leaf: IsLeaf = None
) -> tuple[list[tuple[tuple, Any]], PyTreeDef]:
    """Like :func:`flatten`, but each leaf comes with its key path.

    A key path is a tuple of key entries (:class:`DictKey`, :class:`SequenceKey`,
    :class:`GetAttrKey`, :class:`FlattenedIndexKey`) leading from the root to the
    leaf; format it with :func:`keystr`.

    Args:
        tree: The pytree.
        is_leaf: Optional predicate marking subtrees to treat as leaves.

    Returns:
        ``([(path, leaf), ...], treedef)``.

    Example:
        >>> from functorch_lite import tree
        >>> pairs, _ = tree.flatten_with_path({"layers": [{"w": 1}]})
        >>> [(tree.keystr(path), leaf) for path, leaf in pairs]
        [("['layers'][0]['w']", 1)]
    """
    out: list[tuple[tuple, Any]] = []
    treedef = _flatten_with_path_into(tree, (), is_leaf, out)
    return out, treedef


def leaves_with_path(tree: Any, is_leaf: IsLeaf = None) -> list[tuple[tuple, Any]]:
    """The ``(key_path, leaf)`` pairs of a tree, in flattening order.

    Args:
        tree: The pytree.
        is_leaf: Optional predicate marking subtrees to treat as leaves.

    Returns:
        A list of ``(path, leaf)`` pairs.

    Example:
        >>> from functorch_lite import tree
        >>> tree.leaves_with_path([1, {"a": 2}])
        [((SequenceKey(idx=0),), 1), ((SequenceKey(idx=1), DictKey(key='a')), 2)]
    """
    return flatten_with_path(tree, is_leaf)[0]


def map_with_path(f: Callable, tree: Any, *rest: Any, is_leaf: IsLeaf = None) -> Any:
    """Like :func:`map`, but ``f`` also receives each leaf's key path.

    Args:
        f: Called as ``f(path, leaf, *rest_leaves)``.
        tree: The tree whose structure the result has.
        *rest: Further trees with ``tree``'s structure as a prefix.
        is_leaf: Optional predicate marking subtrees of ``tree`` to treat as leaves.

    Returns:
        A tree of the structure of ``tree`` holding the results of ``f``.

    Raises:
        ValueError: If a tree in ``rest`` does not match; the message names the
            key path.

    Example:
        >>> from functorch_lite import tree
        >>> tree.map_with_path(lambda path, x: f"{tree.keystr(path)}={x}", {"a": 1, "b": [2]})
        {'a': "['a']=1", 'b': ["['b'][0]=2"]}
    """
    pairs, treedef = flatten_with_path(tree, is_leaf)
    flat_rest = _flatten_rest(treedef, rest, "map_with_path")
    return treedef.unflatten(
        [f(path, leaf, *others) for (path, leaf), *others in zip(pairs, *flat_rest, strict=True)]
    )


# ---------------------------------------------------------------- other helpers


def all(tree: Any, *, is_leaf: IsLeaf = None) -> bool:
    """Whether every leaf of ``tree`` is truthy (True for a tree with no leaves).

    Args:
        tree: The pytree.
        is_leaf: Optional predicate marking subtrees to treat as leaves.

    Returns:
        ``builtins.all(leaves(tree))``.

    Example:
        >>> from functorch_lite import tree
        >>> tree.all({"a": True, "b": [1, 2]}), tree.all([True, 0])
        (True, False)
    """
    return builtins.all(leaves(tree, is_leaf))


_NO_INITIALIZER = object()


def reduce(
    function: Callable,
    tree: Any,
    initializer: Any = _NO_INITIALIZER,
    is_leaf: IsLeaf = None,
) -> Any:
    """Fold ``function`` over the leaves of ``tree`` (``functools.reduce`` on leaves).

    Args:
        function: A two-argument function ``function(accumulated, leaf)``.
        tree: The pytree.
        initializer: Optional starting value; required when ``tree`` may have no
            leaves.
        is_leaf: Optional predicate marking subtrees to treat as leaves.

    Returns:
        The reduced value.

    Example:
        >>> import operator
        >>> from functorch_lite import tree
        >>> tree.reduce(operator.add, {"a": 1, "b": [2, 3]})
        6
        >>> tree.reduce(operator.add, [], initializer=0)
        0
    """
    flat = leaves(tree, is_leaf)
    if initializer is _NO_INITIALIZER:
        return functools.reduce(function, flat)
    return functools.reduce(function, flat, initializer)


def transpose(
    outer_treedef: PyTreeDef, inner_treedef: PyTreeDef | None, pytree_to_transpose: Any
) -> Any:
    """Turn a tree of trees inside out: outer-of-inner becomes inner-of-outer.

    Args:
        outer_treedef: The structure of the outer tree.
        inner_treedef: The structure of each inner tree, or None to take it from
            the first inner tree.
        pytree_to_transpose: A tree of structure ``outer_treedef.compose(inner_treedef)``.

    Returns:
        A tree of structure ``inner_treedef`` whose leaves are trees of structure
        ``outer_treedef``.

    Raises:
        TypeError: If ``pytree_to_transpose`` does not have the composed structure
            (JAX raises TypeError here too).

    Example:
        >>> from functorch_lite import tree
        >>> outer = tree.structure([0, 0, 0])
        >>> inner = tree.structure((0, 0))
        >>> tree.transpose(outer, inner, [(1, 2), (3, 4), (5, 6)])
        ([1, 3, 5], [2, 4, 6])
    """
    if inner_treedef is None:
        outer_subtrees = outer_treedef.flatten_up_to(pytree_to_transpose)
        if not outer_subtrees:
            raise ValueError(
                "transpose: cannot infer inner_treedef because outer_treedef "
                f"{outer_treedef} has no leaves; pass inner_treedef explicitly."
            )
        inner_treedef = structure(outer_subtrees[0])
    flat, treedef = flatten(pytree_to_transpose)
    expected = outer_treedef.compose(inner_treedef)
    if treedef != expected:
        raise TypeError(
            f"transpose: pytree_to_transpose has structure {_short_repr(treedef, 200)}, but "
            f"outer_treedef composed with inner_treedef is {_short_repr(expected, 200)}. "
            "Pass a tree of the outer structure whose leaves are all trees of the inner "
            "structure."
        )
    inner_size = inner_treedef.num_leaves
    # In flattening order the leaves of each inner tree are contiguous, so the i-th
    # leaf of every inner tree sits at positions i, i + inner_size, ...
    outer_trees = [outer_treedef.unflatten(flat[i::inner_size]) for i in range(inner_size)]
    return inner_treedef.unflatten(outer_trees)


def ravel(tree: Any) -> tuple[Any, Callable[[Any], Any]]:
    """Concatenate every leaf of a tree of arrays into one 1-D array.

    Leaves are converted with ``functorch_lite.numpy.asarray``, flattened and cast
    to their common dtype (NumPy type promotion), so this also works on traced
    values. This is ``jax.flatten_util.ravel_pytree``.

    Args:
        tree: A pytree of array-likes.

    Returns:
        ``(flat, unravel)``: the 1-D array, and a function that splits a 1-D
        array of the same length back into a tree of the original structure,
        shapes and dtypes. A tree without leaves gives a 0-length array of the
        default float dtype.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import tree
        >>> flat, unravel = tree.ravel({"a": fnp.ones((1, 2)), "b": fnp.zeros(())})
        >>> flat.shape
        (3,)
        >>> unravel(flat * 2)["a"].shape
        (1, 2)
    """
    import numpy as np

    import functorch_lite.numpy as fnp

    flat_leaves, treedef = flatten(tree)
    arrays = [fnp.asarray(leaf) for leaf in flat_leaves]
    shapes = [a.shape for a in arrays]
    dtypes = [a.dtype for a in arrays]
    if arrays:
        # Pairwise promotion, because np.result_type caps its argument count.
        flat_dtype = functools.reduce(np.promote_types, dtypes)
        flat = fnp.concatenate(
            [fnp.ravel(a if a.dtype == flat_dtype else a.astype(flat_dtype)) for a in arrays]
        )
    else:
        flat = fnp.asarray([])
    sizes = [int(np.prod(shape)) for shape in shapes]
    total_size = sum(sizes)

    def unravel(flat_array):
        flat_array = fnp.asarray(flat_array)
        if tuple(flat_array.shape) != (total_size,):
            raise ValueError(
                f"unravel: expected a 1-D array of shape ({total_size},), like the one "
                f"ravel returned, got shape {tuple(flat_array.shape)}."
            )
        pieces = []
        start = 0
        for shape, size, dtype in zip(shapes, sizes, dtypes, strict=True):
            piece = fnp.reshape(flat_array[start : start + size], shape)
            pieces.append(piece.astype(dtype))
            start += size
        return treedef.unflatten(pieces)

    return flat, unravel
