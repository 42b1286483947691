"""Data-parallel training over MPI: ranks, collectives on pytrees, and sharded loaders.

One process drives one device; ``mpiexec -n N python train.py`` starts N of them (ranks).
Every rank holds the same parameters, computes gradients on its own part of each batch
(:func:`shard`), averages them with :func:`all_reduce` and applies the same optimizer
update, so the parameters stay equal on every rank. The communication is MPI's, through
`mpi4py <https://mpi4py.readthedocs.io>`_ (``pip install mpi4py``, or the ``mpi`` extra):
nothing here starts processes or opens sockets.

MPI is reached lazily, at the first call that needs it (importing this module never
imports mpi4py). Without mpi4py, or in a process not started by ``mpiexec`` (MPI then runs
it as a world of one), there is one rank: :func:`all_reduce` and :func:`broadcast` return
their input as Arrays, so the same script runs unchanged on a laptop.

The collectives are eager: they run between jitted steps, on the concrete arrays a jitted
function returns, never inside ``jit``, ``grad`` or ``vmap`` (they raise there). Like every
MPI collective, each must be called by every rank, in the same order, with pytrees of the
same structure, shapes and dtypes. Arrays on a GPU are copied to the host, reduced there
and copied back (no CUDA-aware MPI, no NCCL yet; that path has not run on a GPU).

Example:
    >>> import functorch_lite as fl
    >>> import functorch_lite.numpy as fnp
    >>> fl.distributed.rank(), fl.distributed.size()
    (0, 1)
    >>> fl.distributed.all_reduce({"w": fnp.array([1.0, 2.0])})   # one rank: unchanged
    {'w': Array([1., 2.], dtype=float32)}
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from functorch_lite import core
from functorch_lite import tree as tree_util
from functorch_lite.core import Array, Tracer, asarray_default, to_buffer
from functorch_lite.data import DataLoader, Subset
from functorch_lite.data._loader import _int_arg

__all__ = ["rank", "size", "is_main", "barrier", "all_reduce", "broadcast", "shard",
           "ShardedLoader"]

_KINDS = {"mean": "fc", "sum": "fciu"}  # the dtype kinds each op reduces


# --------------------------------------------------------------------------------------
# The world: MPI's COMM_WORLD, found at first use
# --------------------------------------------------------------------------------------
class _World(NamedTuple):
    """This process's place among the ranks; ``comm`` is None when it runs alone."""

    comm: object
    mpi: object
    rank: int
    size: int


_ALONE = _World(None, None, 0, 1)
_world = None  # set by _get_world(); tests replace it with a stand-in communicator


def _get_world() -> _World:
    global _world
    if _world is None:
        _world = _connect()
    return _world


def _connect() -> _World:
    try:
        from mpi4py import MPI  # NB: this import is what initializes MPI
    except ModuleNotFoundError as error:
        if error.name == "mpi4py":
            return _ALONE
        raise _init_error(error) from error
    except Exception as error:  # libmpi missing, or MPI_Init failing
        raise _init_error(error) from error
    comm = MPI.COMM_WORLD
    return _World(comm, MPI, comm.Get_rank(), comm.Get_size())


def _init_error(error):
    return RuntimeError(
        f"fl.distributed: mpi4py is installed but MPI failed to initialize "
        f"({type(error).__name__}: {error}). Check the MPI installation with "
        f"`mpiexec -n 2 python -m mpi4py.bench helloworld`; pip's `mpich` package provides "
        f"one (pip install mpich mpi4py). To run on one process without MPI, uninstall mpi4py.")


def rank() -> int:
    """This process's rank: 0 .. ``size() - 1`` (0 when not launched with ``mpiexec``).

    Example:
        >>> import functorch_lite as fl
        >>> fl.distributed.rank()
        0
    """
    return _get_world().rank


def size() -> int:
    """The number of ranks (processes) in the job; 1 when not launched with ``mpiexec``.

    Example:
        >>> import functorch_lite as fl
        >>> fl.distributed.size()
        1
    """
    return _get_world().size


def is_main() -> bool:
    """Whether this is rank 0, the rank that prints, evaluates and saves checkpoints.

    Example:
        >>> import functorch_lite as fl
        >>> if fl.distributed.is_main():
        ...     print("only rank 0 prints this")
        only rank 0 prints this
    """
    return _get_world().rank == 0


def barrier() -> None:
    """Wait until every rank has called ``barrier()`` (no-op on one rank).

    Example:
        >>> import functorch_lite as fl
        >>> fl.distributed.barrier()
    """
    _check_not_traced("barrier", None)
    world = _get_world()
    if world.size > 1:
        world.comm.Barrier()


# --------------------------------------------------------------------------------------
# Collectives on pytrees
# --------------------------------------------------------------------------------------
def all_reduce(tree, op="mean"):
    """Sum or average every leaf of ``tree`` over all ranks; every rank gets the result.

    The leaves are packed by dtype into one contiguous buffer each, so a pytree costs one
    MPI ``Allreduce`` per distinct dtype, whatever its number of leaves. Call it on the
    gradients a (jitted) gradient function returned, before the optimizer update; it
    cannot run inside ``jit``, ``grad`` or ``vmap``.

    Args:
        tree: a pytree of arrays (``fl.Array``, NumPy or CuPy arrays, Python scalars),
            with the same structure, shapes and dtypes on every rank.
        op: ``"mean"`` (floating or complex leaves) or ``"sum"`` (integer leaves too).

    Returns:
        A pytree of ``fl.Array`` with the structure, shapes and dtypes of ``tree`` (Python
        scalars become arrays of the default dtypes), each on its leaf's device. On one
        rank the leaves are returned as they are (an ``fl.Array`` is not copied).

    Raises:
        ValueError: ``op`` is not ``"mean"`` or ``"sum"``.
        TypeError: a leaf cannot be reduced (a bool leaf; an integer leaf with
            ``"mean"``; not an array), or the call is inside a transform.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> grads = {"w": fnp.ones((2, 2)), "count": fnp.array(3)}
        >>> fl.distributed.all_reduce(grads, op="sum")["count"]   # one rank: unchanged
        Array(3, dtype=int64)
    """
    if op not in _KINDS:
        raise ValueError(f"fl.distributed.all_reduce: op must be 'mean' or 'sum', got {op!r}")
    _check_not_traced("all_reduce", tree)
    leaves, treedef = tree_util.flatten(tree)
    buffers = [_leaf_buffer("all_reduce", tree, i, leaf) for i, leaf in enumerate(leaves)]
    for i, buf in enumerate(buffers):
        if buf.dtype.kind not in _KINDS[op]:
            raise TypeError(_dtype_error(tree, i, buf, op))
    world = _get_world()
    if world.size == 1:
        return tree_util.unflatten(treedef, _as_arrays(leaves, buffers))
    host, devices = _to_host(buffers)
    packed, layout = _pack(host)
    for flat in packed:
        world.comm.Allreduce(world.mpi.IN_PLACE, flat, op=world.mpi.SUM)
        if op == "mean":
            flat /= world.size
    return tree_util.unflatten(treedef, _from_host(_unpack(packed, layout), devices))


def broadcast(tree, root=0):
    """Every rank gets rank ``root``'s values of ``tree`` (identity on one rank).

    Call it once after initializing the parameters (and the optimizer state, if it was
    not made from the broadcast parameters), so every rank starts from the same values.
    The ranks first check that their pytrees agree in structure, shapes and dtypes (an
    error on every rank if not), then send one MPI ``Bcast`` per distinct dtype.

    Args:
        tree: a pytree of arrays; on ranks other than ``root`` only its structure,
            shapes and dtypes matter.
        root: the rank whose values everyone receives.

    Returns:
        A pytree of ``fl.Array`` with ``root``'s values, each on its leaf's device.

    Raises:
        ValueError: ``root`` is not a rank, or the pytrees differ between ranks.
        TypeError: a leaf is not an array, or the call is inside a transform.

    Example:
        >>> import functorch_lite as fl
        >>> params, _ = fl.nn.Linear(3, 2).init(fl.random.key(fl.distributed.rank()))
        >>> params = fl.distributed.broadcast(params)     # rank 0's initial values
        >>> params["weight"].shape
        (2, 3)
    """
    _check_not_traced("broadcast", tree)
    world = _get_world()
    root = _int_arg("fl.distributed.broadcast", "root", root, minimum=0, limit=world.size)
    leaves, treedef = tree_util.flatten(tree)
    buffers = [_leaf_buffer("broadcast", tree, i, leaf) for i, leaf in enumerate(leaves)]
    if world.size == 1:
        return tree_util.unflatten(treedef, _as_arrays(leaves, buffers))
    _check_same_trees(world, tree, buffers, root)
    host, devices = _to_host(buffers)
    packed, layout = _pack(host)
    for flat in packed:
        world.comm.Bcast(flat, root=root)
    return tree_util.unflatten(treedef, _from_host(_unpack(packed, layout), devices))


def _as_arrays(leaves, buffers):
    return [leaf if type(leaf) is Array else Array(buf) for leaf, buf in zip(leaves, buffers)]


def _check_not_traced(name, tree):
    trace = core.ctx.trace
    if trace is None:
        return
    traced = [leaf for leaf in tree_util.leaves(tree) if isinstance(leaf, Tracer)]
    what = f" on a traced {traced[0].aval.str_short()} value" if traced else ""
    raise TypeError(
        f"fl.distributed.{name} was called inside {trace.transform_name}{what}. Collectives "
        f"run eagerly between steps, on concrete arrays: call it outside the jitted or "
        f"differentiated function, e.g. on the gradients a jitted grad function returns: "
        f"grads = fl.distributed.all_reduce(grad_fn(params, batch)), then update the "
        f"parameters (docs/distributed.md).")


def _leaf_path(tree, index):
    path, _ = tree_util.flatten_with_path(tree)[0][index]
    return tree_util.keystr(path) or "<root>"


def _leaf_buffer(name, tree, index, leaf):
    """The leaf's NumPy or CuPy buffer (Python scalars take the default dtypes)."""
    try:
        buf = to_buffer(leaf)
    except TypeError as error:
        raise TypeError(f"fl.distributed.{name}: leaf {_leaf_path(tree, index)} is not an "
                        f"array: {error}") from None
    if not hasattr(buf, "dtype"):  # a Python scalar
        buf = asarray_default(buf)
    return buf


def _dtype_error(tree, index, buf, op):
    path, dtype = _leaf_path(tree, index), buf.dtype
    if dtype.kind == "b":
        fix = "cast it with .astype('int32') and use op='sum' to count the True values"
    elif dtype.kind in "iu":
        fix = "use op='sum' for integer leaves, or cast the leaf with .astype('float32')"
    else:
        fix = "only numeric arrays can be reduced"
    return (f"fl.distributed.all_reduce: leaf {path} has dtype {dtype}, which op={op!r} "
            f"cannot reduce; {fix}.")


def _check_same_trees(world, tree, buffers, root):
    """Raise on every rank unless every rank's pytree matches root's (one small allgather)."""
    paths = [tree_util.keystr(path) for path, _ in tree_util.flatten_with_path(tree)[0]]
    mine = (str(tree_util.structure(tree)),
            [f"{path}: {buf.dtype}{list(buf.shape)}" for path, buf in zip(paths, buffers)])
    everyone = world.comm.allgather(mine)
    differing = [r for r, theirs in enumerate(everyone) if theirs != everyone[root]]
    if not differing:
        return
    other = differing[0]
    (root_def, root_leaves), (other_def, other_leaves) = everyone[root], everyone[other]
    diff = next(((a, b) for a, b in zip(root_leaves, other_leaves) if a != b), None)
    if diff is not None:
        detail = f"rank {root} has leaf {diff[0]} where rank {other} has {diff[1]}"
    elif len(root_leaves) != len(other_leaves):
        detail = (f"rank {root} has {len(root_leaves)} leaves and rank {other} has "
                  f"{len(other_leaves)}")
    else:
        detail = f"rank {root} has {root_def:.200} and rank {other} has {other_def:.200}"
    raise ValueError(
        f"fl.distributed.broadcast: the pytrees differ between ranks {differing} and the "
        f"root {root}: {detail}. Every rank must pass a pytree of the same structure, "
        f"shapes and dtypes (e.g. the params of the same model's init).")


# --------------------------------------------------------------------------------------
# Packing: one contiguous host buffer per dtype
# --------------------------------------------------------------------------------------
class _Slot(NamedTuple):
    """Where one leaf lives in the packed buffers: ``packed[group][start:stop]``."""

    group: int
    start: int
    stop: int
    shape: tuple


def _pack(buffers):
    """Copy NumPy ``buffers`` into one new flat buffer per dtype, in order of first use.

    Returns ``(packed, layout)``: ``packed`` the list of 1-d buffers (one per dtype, which
    the collectives may overwrite) and ``layout`` one ``_Slot`` per input buffer.
    Ranks with pytrees of the same structure, shapes and dtypes get the same layout.
    """
    groups = {}
    for index, buf in enumerate(buffers):
        groups.setdefault(buf.dtype, []).append(index)
    packed, layout = [], [None] * len(buffers)
    for group, (dtype, members) in enumerate(groups.items()):
        flat = np.empty(sum(buffers[i].size for i in members), dtype)
        start = 0
        for i in members:
            buf = buffers[i]
            stop = start + buf.size
            flat[start:stop].reshape(buf.shape)[...] = buf  # one copy, any strides
            layout[i] = _Slot(group, start, stop, tuple(buf.shape))
            start = stop
        packed.append(flat)
    return packed, layout


def _unpack(packed, layout):
    """The buffers :func:`pack` packed, as views of ``packed`` in their original shapes."""
    return [packed[slot.group][slot.start:slot.stop].reshape(slot.shape) for slot in layout]


def _to_host(buffers):
    """NumPy copies of CuPy buffers, and each buffer's device (None: the host).

    NB: untested on a GPU. CuPy buffers take a round trip through host memory; a
    CUDA-aware MPI or NCCL would avoid it.
    """
    devices = [None if type(buf) is np.ndarray else f"cuda:{buf.device.id}"
               for buf in buffers]
    host = [buf if device is None else buf.get() for buf, device in zip(buffers, devices)]
    return host, devices


def _from_host(buffers, devices):
    from functorch_lite.devices import device_put

    return [Array(buf) if device is None else device_put(Array(buf), device)
            for buf, device in zip(buffers, devices)]


# --------------------------------------------------------------------------------------
# Sharded loading
# --------------------------------------------------------------------------------------
def shard(loader, rank=None, size=None):
    """This rank's part of every epoch of ``loader`` (PyTorch's ``DistributedSampler``).

    Epoch ``e`` of the full loader visits the samples in the order ``order =
    loader.indices(e)`` (the same on every rank when every rank uses the same seed). That
    order is cut to a multiple of ``size`` (``drop_last=True``) or padded to one by
    repeating its first samples, and rank ``r`` gets ``order[r::size]``, batched by
    ``loader.batch_size``. So every rank runs the same number of steps, and step ``k``'s
    batches on the ranks together hold the samples of step ``k`` of a single-process
    loader with ``batch_size * size`` samples per batch: averaging the ranks' gradients
    with :func:`all_reduce` is training on that loader.

    With the defaults (``rank()``, ``size()``) the ranks first check that their loaders
    agree (seed, shuffle, dataset length, batch size, drop_last): a rank with another seed
    would visit samples the others visit too.

    Args:
        loader: an ``fl.data.DataLoader``, the same on every rank.
        rank: which part to take (default: this process's :func:`rank`).
        size: into how many parts (default: :func:`size`).

    Returns:
        A :class:`ShardedLoader`.

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> loader = fl.data.DataLoader(fl.data.ArrayDataset(np.arange(10)), batch_size=2)
        >>> [b.tolist() for b in fl.distributed.shard(loader, rank=1, size=2).epoch(0)]
        [[1, 3], [5, 7], [9]]
        >>> [b.tolist() for b in fl.distributed.shard(loader).epoch(0)]   # one rank: all
        [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    """
    if not isinstance(loader, DataLoader):
        raise TypeError(
            f"fl.distributed.shard: expected an fl.data.DataLoader, got "
            f"{type(loader).__name__}; wrap the dataset first: fl.distributed.shard("
            f"fl.data.DataLoader(dataset, batch_size, shuffle=True, seed=0))")
    check_agreement = rank is None and size is None
    if size is None:
        size = _get_world().size
    if rank is None:
        rank = _get_world().rank
    for name, value in (("rank", rank), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"fl.distributed.shard: {name} must be an int, got "
                            f"{value!r:.40} ({type(value).__name__})")
    if not 0 <= rank < size:
        raise ValueError(f"fl.distributed.shard: rank must lie in [0, size) = [0, {size}), "
                         f"got rank={rank}")
    if check_agreement:
        _check_same_loaders(loader)
    return ShardedLoader(loader, int(rank), int(size))


def _check_same_loaders(loader):
    world = _get_world()
    if world.size == 1:
        return
    names = ("seed", "shuffle", "dataset length", "batch_size", "drop_last")
    mine = (loader.seed, loader.shuffle, len(loader.dataset), loader.batch_size,
            loader.drop_last)
    everyone = world.comm.allgather(mine)
    for other, theirs in enumerate(everyone):
        for name, a, b in zip(names, everyone[0], theirs):
            if a != b:
                raise ValueError(
                    f"fl.distributed.shard: the loaders differ between ranks: rank 0 has "
                    f"{name} {a!r} and rank {other} has {b!r}. Every rank must shard the "
                    f"same loader (same dataset, batch size and seed), or the ranks' parts "
                    f"overlap and their step counts differ.")


class ShardedLoader:
    """One rank's part of each epoch of a :class:`~functorch_lite.data.DataLoader`
    (made by :func:`shard`).

    It has the loader's interface: ``epoch(e)`` yields this rank's batches of epoch ``e``
    (a pure function of the seed, ``e``, the rank and the number of ranks), iterating it
    runs epoch ``next_epoch`` and advances it, ``len()`` is the number of batches (the
    same on every rank), ``indices(e)`` this rank's samples in order. ``fl.train.fit``
    accepts it as a loader.

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> loader = fl.data.DataLoader(fl.data.ArrayDataset(np.arange(5)), batch_size=2)
        >>> part = fl.distributed.shard(loader, rank=1, size=2)
        >>> part.indices(0).tolist(), len(part)     # 5 samples padded to 6: 0 twice
        ([1, 3, 0], 2)
    """

    def __init__(self, loader, rank, size):
        self.loader, self.rank, self.size = loader, rank, size
        n = len(loader.dataset)
        self._per_rank = n // size if loader.drop_last else -(-n // size)
        self.next_epoch = loader.next_epoch

    def __len__(self):
        if self.loader.drop_last:
            return self._per_rank // self.loader.batch_size
        return -(-self._per_rank // self.loader.batch_size)

    def indices(self, epoch):
        """This rank's samples of epoch ``epoch``, in the order it visits them."""
        order = self.loader.indices(epoch)
        # np.resize repeats the order cyclically: it cuts or pads to the length asked for.
        return np.resize(order, self._per_rank * self.size)[self.rank::self.size]

    def epoch(self, epoch):
        """An iterator over this rank's batches of epoch ``epoch``."""
        full = self.loader
        part = DataLoader(Subset(full.dataset, self.indices(epoch)), full.batch_size,
                          drop_last=full.drop_last, num_workers=full.num_workers,
                          prefetch=full.prefetch, collate_fn=full.collate_fn,
                          start_method=full.start_method)
        return part.epoch(0)

    def __iter__(self):
        """Run epoch ``next_epoch`` and advance it."""
        epoch = self.next_epoch
        self.next_epoch = epoch + 1
        return self.epoch(epoch)

    def __repr__(self):
        return f"ShardedLoader({self.loader!r}, rank={self.rank} of {self.size})"
