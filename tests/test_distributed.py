"""fl.distributed: one rank without MPI, the packing of pytrees, the collectives' glue on a
stand-in communicator of two mirrored ranks, sharded loaders, errors; and, when mpi4py and
an ``mpiexec`` are installed (``pip install mpi4py mpich``), two real ranks running
tests/distributed_job.py and the example of docs/distributed.md."""

import os
import re
import shutil
import signal
import subprocess
import sys
import types
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_devices import FakeCupy, FakeDeviceArray

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import core, distributed, optim

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------
# Worlds: alone (no mpi4py), and two mirrored ranks on a stand-in communicator
# --------------------------------------------------------------------------------------
@pytest.fixture
def alone(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `from mpi4py import MPI` fails
    monkeypatch.setattr(distributed, "_world", None)


class MirrorComm:
    """Rank 0 of two ranks whose peer holds the same values as this one: a sum doubles
    every value. ``Bcast`` fills the buffer with ``bcast_value``; ``allgather`` gives the
    peer the value ``peer(obj)``. Records every collective as ``(name, dtype, size)``."""

    def __init__(self):
        self.calls = []
        self.bcast_value = 7
        self.peer = lambda obj: obj

    def Allreduce(self, sendbuf, recvbuf, op):
        assert sendbuf is FAKE_MPI.IN_PLACE and op is FAKE_MPI.SUM
        assert recvbuf.ndim == 1 and recvbuf.flags.c_contiguous
        self.calls.append(("Allreduce", recvbuf.dtype, recvbuf.size))
        recvbuf *= 2

    def Bcast(self, buf, root):
        self.calls.append(("Bcast", buf.dtype, buf.size))
        buf[...] = self.bcast_value

    def allgather(self, obj):
        self.calls.append(("allgather", None, None))
        return [obj, self.peer(obj)]

    def Barrier(self):
        self.calls.append(("Barrier", None, None))


FAKE_MPI = types.SimpleNamespace(IN_PLACE=object(), SUM=object())


@pytest.fixture
def two_ranks(monkeypatch):
    comm = MirrorComm()
    monkeypatch.setattr(distributed, "_world", distributed._World(comm, FAKE_MPI, 0, 2))
    return comm


def mixed_tree():
    return {"w": fnp.ones((2, 3)), "b": [np.arange(4.0), fnp.array(2.5)],
            "count": np.array([1, 2], np.int64), "half": np.full(3, 0.5, np.float16),
            "t": np.arange(6.0).reshape(2, 3).T, "nothing": None}


def assert_same_leaves(got, want):
    assert fl.tree.structure(got) == fl.tree.structure(want)
    for a, b in zip(fl.tree.leaves(got), fl.tree.leaves(want), strict=True):
        assert type(a) is fl.Array
        assert a.dtype == np.asarray(b).dtype and a.shape == np.shape(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# --------------------------------------------------------------------------------------
# One rank
# --------------------------------------------------------------------------------------
def test_one_rank_without_mpi4py(alone):
    assert (distributed.rank(), distributed.size(), distributed.is_main()) == (0, 1, True)
    distributed.barrier()


@pytest.mark.parametrize("op", ["mean", "sum"])
def test_one_rank_all_reduce_returns_the_tree_as_arrays(alone, op):
    tree = mixed_tree() if op == "sum" else {"w": fnp.ones(2), "b": [np.arange(3.0)]}
    got = distributed.all_reduce(tree, op=op)
    assert_same_leaves(got, tree)
    assert got["w"] is tree["w"]  # an Array is not copied on one rank


def test_one_rank_broadcast_is_the_identity(alone):
    tree = {**mixed_tree(), "flags": np.array([True, False]), "scalar": 3.0}
    got = distributed.broadcast(tree)
    assert got["scalar"].dtype == np.float32  # a Python float takes the default dtype
    tree["scalar"] = np.float32(3.0)
    assert_same_leaves(got, tree)


def test_importing_the_library_does_not_import_mpi4py():
    code = "import sys, functorch_lite as fl; fl.distributed; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_a_broken_mpi_install_is_a_clear_error(monkeypatch):
    broken = types.ModuleType("mpi4py")

    def fail(name):
        raise RuntimeError("MPI_Init failed: no process manager")

    broken.__getattr__ = fail
    monkeypatch.setitem(sys.modules, "mpi4py", broken)
    monkeypatch.setattr(distributed, "_world", None)
    with pytest.raises(RuntimeError, match=r"mpi4py is installed but MPI failed to "
                       r"initialize \(RuntimeError: MPI_Init failed.*uninstall mpi4py"):
        distributed.size()


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["max", "MEAN", None])
def test_all_reduce_rejects_unknown_ops(alone, op):
    with pytest.raises(ValueError, match=r"all_reduce: op must be 'mean' or 'sum', got"):
        distributed.all_reduce({"w": fnp.ones(2)}, op=op)


def test_mean_of_an_integer_leaf_names_it_and_the_fix(alone):
    with pytest.raises(TypeError, match=r"all_reduce: leaf \['n'\]\[1\] has dtype int32, "
                       r"which op='mean' cannot reduce; use op='sum'"):
        distributed.all_reduce({"n": [fnp.ones(2), np.arange(3, dtype=np.int32)]})


def test_bool_leaves_are_refused(alone):
    with pytest.raises(TypeError, match=r"leaf \['ok'\] has dtype bool.*astype\('int32'\)"):
        distributed.all_reduce({"ok": np.array([True])}, op="sum")


def test_a_leaf_that_is_not_an_array_is_named(two_ranks):
    with pytest.raises(TypeError, match=r"broadcast: leaf \['name'\] is not an array"):
        distributed.broadcast({"name": "model", "w": fnp.ones(2)})


@pytest.mark.parametrize("transform", [fl.jit, fl.grad, fl.vmap])
def test_all_reduce_inside_a_transform_says_to_call_it_outside(alone, transform):
    def loss(x):
        return fnp.sum(distributed.all_reduce(x * 2.0))

    name = {fl.jit: "jit", fl.grad: "grad", fl.vmap: "vmap"}[transform]
    with pytest.raises(TypeError, match=rf"all_reduce was called inside {name} on a traced "
                       r"f32\[.*\] value.*outside the jitted or differentiated function"):
        transform(loss)(fnp.ones((2, 3)))


def test_broadcast_and_barrier_inside_jit_raise(alone):
    with pytest.raises(TypeError, match="broadcast was called inside jit"):
        fl.jit(distributed.broadcast)(fnp.ones(2))
    with pytest.raises(TypeError, match=r"barrier was called inside jit\. Collectives"):
        fl.jit(lambda x: distributed.barrier() or x)(fnp.ones(2))


@pytest.mark.parametrize("root, error", [(1, ValueError), (-1, ValueError), ("0", TypeError),
                                         (True, TypeError)])
def test_broadcast_root_must_be_a_rank(alone, root, error):
    with pytest.raises(error, match="broadcast: root must be"):
        distributed.broadcast(fnp.ones(2), root=root)


# --------------------------------------------------------------------------------------
# Packing: one contiguous buffer per dtype
# --------------------------------------------------------------------------------------
_DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.int64,
                           np.uint8, np.complex64, np.bool_])


@st.composite
def _buffers(draw):
    arrays = draw(st.lists(hnp.arrays(_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3,
                                                                min_side=0, max_side=4)),
                           max_size=8))
    # Some non-contiguous inputs: transposes and strided views.
    return [a.T if draw(st.booleans()) else a[::2] if a.ndim and draw(st.booleans()) else a
            for a in arrays]


@given(_buffers())
def test_pack_then_unpack_gives_back_every_buffer(buffers):
    packed, layout = distributed._pack(buffers)
    dtypes = list(dict.fromkeys(buf.dtype for buf in buffers))  # in order of first use
    assert [flat.dtype for flat in packed] == dtypes
    for flat, dtype in zip(packed, dtypes):
        assert flat.ndim == 1 and flat.flags.c_contiguous
        assert flat.size == sum(buf.size for buf in buffers if buf.dtype == dtype)
    unpacked = distributed._unpack(packed, layout)
    assert len(unpacked) == len(buffers)
    for got, want in zip(unpacked, buffers):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        assert not np.shares_memory(got, want)


def test_pack_layout_of_a_mixed_tree():
    buffers = [np.ones((2, 2), np.float32), np.arange(3), np.zeros(3, np.float32),
               np.array(5.0, np.float32)]
    packed, layout = distributed._pack(buffers)
    assert [(flat.dtype, flat.size) for flat in packed] == [(np.float32, 8), (np.int64, 3)]
    assert [tuple(slot) for slot in layout] == [(0, 0, 4, (2, 2)), (1, 0, 3, (3,)),
                                                (0, 4, 7, (3,)), (0, 7, 8, ())]
    packed[0][:] = -1  # what a collective does: unpacked leaves see it
    assert distributed._unpack(packed, layout)[3] == -1


# --------------------------------------------------------------------------------------
# The collectives on a stand-in communicator (two ranks holding the same values)
# --------------------------------------------------------------------------------------
def test_all_reduce_makes_one_allreduce_per_dtype(two_ranks):
    tree = mixed_tree()
    total = distributed.all_reduce(tree, op="sum")
    assert_same_leaves(total, fl.tree.map(lambda x: np.asarray(x) * 2, tree))
    assert [call[:2] for call in two_ranks.calls] == [
        ("Allreduce", np.float64), ("Allreduce", np.float32), ("Allreduce", np.int64),
        ("Allreduce", np.float16)]  # dtypes in order of first use (sorted dict keys)
    np.testing.assert_array_equal(tree["b"][0], np.arange(4.0))  # inputs untouched


def test_all_reduce_mean_divides_by_the_number_of_ranks(two_ranks):
    tree = {"w": fnp.arange(3.0), "z": np.array([1 + 2j], np.complex64), "s": 0.25}
    got = distributed.all_reduce(tree)
    assert_same_leaves(got, {"w": fnp.arange(3.0), "z": tree["z"],
                             "s": np.array(0.25, np.float32)})


def test_all_reduce_of_an_empty_tree_communicates_nothing(two_ranks):
    assert distributed.all_reduce({"a": None, "b": []}) == {"a": None, "b": []}
    assert two_ranks.calls == []


def test_broadcast_checks_the_trees_then_sends_each_dtype_once(two_ranks):
    tree = {"w": fnp.ones((2, 2)), "b": fnp.zeros(2), "n": np.arange(2), "ok": np.ones(1, bool)}
    got = distributed.broadcast(tree, root=1)
    assert [call[:2] for call in two_ranks.calls] == [
        ("allgather", None), ("Bcast", np.float32), ("Bcast", np.int64), ("Bcast", np.bool_)]
    assert_same_leaves(got, {"w": np.full((2, 2), 7, np.float32), "b": np.full(2, 7, np.float32),
                             "n": np.full(2, 7), "ok": np.ones(1, bool)})


@pytest.mark.parametrize("peer, detail", [
    (lambda sig: (sig[0], [sig[1][0].replace("float32", "float64")] + sig[1][1:]),
     r"rank 0 has leaf \['b'\]: float32\[2\] where rank 1 has \['b'\]: float64\[2\]"),
    (lambda sig: (sig[0], sig[1][:1]), r"rank 0 has 2 leaves and rank 1 has 1"),
    (lambda sig: ("PyTreeDef(other)", sig[1]), r"rank 0 has PyTreeDef\(.*\) and rank 1 has "
                                               r"PyTreeDef\(other\)"),
])
def test_broadcast_of_differing_trees_raises_before_sending(two_ranks, peer, detail):
    two_ranks.peer = peer
    with pytest.raises(ValueError, match=r"broadcast: the pytrees differ between ranks \[1\] "
                       rf"and the root 0: {detail}\. Every rank must pass"):
        distributed.broadcast({"b": fnp.zeros(2), "w": fnp.ones(2)})
    assert [call[0] for call in two_ranks.calls] == ["allgather"]  # no Bcast was sent


def test_barrier_waits_on_two_ranks(two_ranks):
    distributed.barrier()
    assert two_ranks.calls == [("Barrier", None, None)]


def test_arrays_on_a_gpu_go_through_the_host_and_back(two_ranks, monkeypatch):
    fake = FakeCupy(free=(1 << 30, 1 << 30))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(core.backends, "gpu_seen", core.backends.gpu_seen)
    monkeypatch.setattr(FakeCupy, "current", 0)
    tree = {"gpu": FakeDeviceArray(np.arange(3.0, dtype=np.float32), 1), "cpu": fnp.ones(3)}
    got = distributed.all_reduce(tree, op="sum")
    assert (got["gpu"].device, got["cpu"].device) == ("cuda:1", "cpu")
    np.testing.assert_array_equal(got["gpu"]._buf.array, np.arange(3.0) * 2)
    assert [call[:2] for call in two_ranks.calls] == [("Allreduce", np.float32)]


# --------------------------------------------------------------------------------------
# Sharded loaders
# --------------------------------------------------------------------------------------
@given(n=st.integers(0, 40), size=st.integers(1, 4), batch=st.integers(1, 6),
       drop_last=st.booleans(), shuffle=st.booleans(), seed=st.integers(0, 3),
       epoch=st.integers(0, 3))
def test_shards_together_are_the_batches_of_one_bigger_loader(n, size, batch, drop_last,
                                                              shuffle, seed, epoch):
    ds = fl.data.ArrayDataset(np.arange(n))
    loader = fl.data.DataLoader(ds, batch, shuffle=shuffle, drop_last=drop_last, seed=seed)
    parts = [distributed.shard(loader, rank=r, size=size) for r in range(size)]
    per_rank = [[b.tolist() for b in part.epoch(epoch)] for part in parts]
    assert all(len(batches) == len(part) for batches, part in zip(per_rank, parts))
    assert len({len(batches) for batches in per_rank}) == 1  # every rank, as many steps
    order = loader.indices(epoch)
    covered = sorted(sum((sum(batches, []) for batches in per_rank), []))
    if drop_last:  # a prefix of the order: whole batches on every rank, no repeats
        kept = n // size // batch * batch  # samples per rank
        assert covered == sorted(order[:kept * size].tolist())
    else:  # every sample, and fewer than `size` of them twice
        assert set(covered) == set(range(n)) and len(covered) - n < size
    if n % (batch * size) == 0:  # step k on all ranks = step k of a loader of batch*size
        big = fl.data.DataLoader(ds, batch * size, shuffle=shuffle, seed=seed)
        together = [sorted(sum(step, [])) for step in zip(*per_rank)]
        assert together == [sorted(b.tolist()) for b in big.epoch(epoch)]


def test_shard_pads_by_repeating_the_first_samples():
    loader = fl.data.DataLoader(fl.data.ArrayDataset(np.arange(5) * 10), batch_size=2)
    parts = [distributed.shard(loader, rank=r, size=3) for r in range(3)]
    assert [part.indices(0).tolist() for part in parts] == [[0, 3], [1, 4], [2, 0]]
    assert [[b.tolist() for b in part.epoch(0)] for part in parts] == [[[0, 30]], [[10, 40]],
                                                                       [[20, 0]]]


def test_a_sharded_loader_walks_epochs_like_a_loader(alone):
    loader = fl.data.DataLoader(fl.data.ArrayDataset(np.arange(6)), 2, shuffle=True, seed=1)
    part = distributed.shard(loader)
    assert (part.rank, part.size, len(part)) == (0, 1, 3)
    first = [b.tolist() for b in part]
    assert first == [b.tolist() for b in loader.epoch(0)] and part.next_epoch == 1
    assert repr(part).startswith("ShardedLoader(DataLoader(") and "rank=0 of 1" in repr(part)


def test_fit_accepts_a_sharded_loader(alone):
    x = np.linspace(-1, 1, 16, dtype=np.float32)
    loader = distributed.shard(fl.data.DataLoader(fl.data.ArrayDataset(x, 2 * x), 8))

    def loss_fn(params, batch, key):
        xb, yb = batch
        return fnp.mean((xb * params["a"] - yb) ** 2)

    params, _, history = fl.train.fit(loss_fn, {"a": fnp.zeros(())}, optim.sgd(0.5), loader,
                                      epochs=2, progress=False)
    assert len(history["loss"]) == 2


def test_shard_checks_that_the_ranks_loaders_agree(two_ranks):
    loader = fl.data.DataLoader(fl.data.ArrayDataset(np.arange(8)), 2, shuffle=True, seed=5)
    two_ranks.peer = lambda mine: (6,) + mine[1:]
    with pytest.raises(ValueError, match=r"shard: the loaders differ between ranks: rank 0 "
                       r"has seed 5 and rank 1 has 6"):
        distributed.shard(loader)
    two_ranks.peer = lambda mine: mine
    assert distributed.shard(loader).indices(0).size == 4


@pytest.mark.parametrize("kwargs, error, match", [
    ({"rank": 2, "size": 2}, ValueError, r"rank must lie in \[0, size\) = \[0, 2\), got rank=2"),
    ({"rank": 0, "size": 1.5}, TypeError, "size must be an int"),
])
def test_shard_validates_rank_and_size(kwargs, error, match):
    loader = fl.data.DataLoader(fl.data.ArrayDataset(np.arange(4)), 2)
    with pytest.raises(error, match=match):
        distributed.shard(loader, **kwargs)


def test_shard_wants_a_loader():
    with pytest.raises(TypeError, match=r"shard: expected an fl.data.DataLoader, got "
                       r"ArrayDataset; wrap the dataset first"):
        distributed.shard(fl.data.ArrayDataset(np.arange(4)))


# --------------------------------------------------------------------------------------
# The example of docs/distributed.md, and two real ranks
# --------------------------------------------------------------------------------------
def _docs_example():
    text = (REPO / "docs" / "distributed.md").read_text()
    section = text.split("## A complete example", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _run(command, cwd, timeout=60):
    """Run ``command`` in its own process group; on a timeout kill the whole group (an
    MPI job's ranks too) and fail, so a hung job cannot hang the suite."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
        OMP_NUM_THREADS="1", FL_JIT_THREADS="1")
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{' '.join(command)} did not finish in {timeout} s:\n{output}")
    assert process.returncode == 0, output
    return output


def test_the_docs_example_runs_on_one_process(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(_docs_example())
    output = _run([sys.executable, str(script)], cwd=tmp_path)
    losses = [float(x) for x in re.findall(r"epoch \d: loss ([\d.]+)", output)]
    assert len(losses) == 5 and losses[-1] < losses[0], output
    assert fl.load(tmp_path / "params.npz")[0]["weight"].shape == (32, 8)


def _mpiexec():
    """The mpiexec of this Python's environment (the one mpi4py's MPI came with), or the
    first on the PATH; None without mpi4py."""
    if find_spec("mpi4py") is None:
        return None
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


needs_mpi = pytest.mark.skipif(
    _mpiexec() is None, reason="needs mpi4py and an mpiexec (pip install mpi4py mpich)")


@needs_mpi
def test_two_ranks_reduce_broadcast_and_train_as_one_process(tmp_path):
    output = _run([_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py",
                   str(REPO / "tests" / "distributed_job.py")], cwd=tmp_path)
    assert sorted(re.findall(r"rank \d ok", output)) == ["rank 0 ok", "rank 1 ok"], output


@needs_mpi
def test_the_docs_example_runs_on_two_ranks(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(_docs_example())
    output = _run([_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", str(script)],
                  cwd=tmp_path)
    assert len(re.findall(r"epoch \d: loss", output)) == 5, output  # rank 0 prints


@needs_mpi
def test_without_mpiexec_mpi_runs_one_rank(tmp_path):
    code = "import functorch_lite as fl; print(fl.distributed.rank(), fl.distributed.size())"
    assert _run([sys.executable, "-c", code], cwd=tmp_path).split() == ["0", "1"]
