"""The two-rank checks of ``fl.distributed``, run by tests/test_distributed.py as

    mpiexec -n 2 python -m mpi4py tests/distributed_job.py

Each rank prints ``rank R ok`` when every check passed; a failing check raises, and
mpi4py's runner then aborts both ranks. Importing this file does nothing (pytest's
doctest collection imports it; mpi4py is only imported by ``main``).
"""

import numpy as np

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import distributed as dist
from functorch_lite import optim


def mixed_tree(r):
    """A pytree whose values depend on the rank ``r``, with four dtypes."""
    return {"w": np.full((2, 3), r + 1.0, np.float32),
            "b": [np.arange(4, dtype=np.float64) * (r + 1), fnp.array(r + 10.0)],
            "count": np.array([r, 7 * r + 1], np.int32),
            "half": np.full(5, 0.5 * (r + 1), np.float16),
            "nothing": None}


def check_ranks(comm):
    assert (dist.rank(), dist.size()) == (comm.Get_rank(), 2), (dist.rank(), dist.size())
    assert dist.is_main() == (dist.rank() == 0)
    dist.barrier()


def check_all_reduce():
    tree = mixed_tree(dist.rank())
    total = dist.all_reduce(tree, op="sum")
    want = fl.tree.map(lambda a, b: np.asarray(a) + np.asarray(b), mixed_tree(0), mixed_tree(1))
    for got, expected, leaf in zip(fl.tree.leaves(total), fl.tree.leaves(want),
                                   fl.tree.leaves(tree)):
        assert type(got) is fl.Array
        assert got.dtype == np.asarray(leaf).dtype and got.shape == np.shape(leaf)
        np.testing.assert_array_equal(np.asarray(got), expected)
    assert fl.tree.structure(total) == fl.tree.structure(tree)
    floats = {key: tree[key] for key in ("w", "b", "half")}
    mean = dist.all_reduce(floats)  # the default op
    np.testing.assert_array_equal(np.asarray(mean["w"]), np.full((2, 3), 1.5, np.float32))
    np.testing.assert_array_equal(np.asarray(mean["b"][0]), np.arange(4) * 1.5)
    assert float(mean["b"][1]) == 10.5 and mean["half"].dtype == np.float16
    # The inputs are untouched: the collectives work on packed copies.
    np.testing.assert_array_equal(tree["w"], mixed_tree(dist.rank())["w"])


def check_broadcast():
    tree = {"params": mixed_tree(dist.rank()), "flags": np.array([True, dist.rank() == 1])}
    for root in (0, 1):
        got = dist.broadcast(tree, root=root)
        want = {"params": mixed_tree(root), "flags": np.array([True, root == 1])}
        for a, b in zip(fl.tree.leaves(got), fl.tree.leaves(want)):
            assert a.dtype == np.asarray(b).dtype
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Trees that differ raise on every rank instead of hanging.
    extra = {"w": np.zeros(3), **({"v": np.zeros(1)} if dist.rank() == 1 else {})}
    try:
        dist.broadcast(extra)
    except ValueError as error:
        assert "differ between ranks [1]" in str(error), error
    else:
        raise AssertionError("broadcast of different pytrees did not raise")


def check_shard_agreement():
    ds = fl.data.ArrayDataset(np.arange(8.0))
    try:
        dist.shard(fl.data.DataLoader(ds, 2, shuffle=True, seed=dist.rank()))
    except ValueError as error:
        assert "seed 0 and rank 1 has 1" in str(error), error
    else:
        raise AssertionError("shard of loaders with different seeds did not raise")


def _model_loss(params, batch):
    x, y = batch
    hidden = fnp.tanh(x @ params["w1"] + params["b1"])
    return fnp.mean((hidden @ params["w2"] - y) ** 2)


def _train(params, loader, epochs, reduce):
    opt = optim.adam(0.05)
    opt_state = opt.init(params)
    grad_fn = fl.jit(fl.value_and_grad(_model_loss))

    @fl.jit
    def update(params, opt_state, grads):
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state

    losses = []
    for epoch in range(epochs):
        for batch in loader.epoch(epoch):
            loss, grads = grad_fn(params, batch)
            loss, grads = reduce((loss, grads))
            params, opt_state = update(params, opt_state, grads)
            losses.append(float(loss))
    return params, losses


def check_training(comm):
    """Two ranks, each on half of every batch of 8, train as one process on batches of 8."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = np.sin(x @ np.array([1.0, -2.0, 0.5], np.float32))[:, None]
    ds = fl.data.ArrayDataset(x, y)

    def init(key):
        k1, k2 = fl.random.split(key)
        return {"w1": fl.random.normal(k1, (3, 8)), "b1": fnp.zeros(8),
                "w2": fl.random.normal(k2, (8, 1)) * 0.3}

    params = dist.broadcast(init(fl.random.key(dist.rank())))  # rank 0's initial values
    loader = dist.shard(fl.data.DataLoader(ds, batch_size=4, shuffle=True, seed=3))
    assert len(loader) == 4
    trained, losses = _train(params, loader, epochs=3, reduce=dist.all_reduce)

    alone = fl.data.DataLoader(ds, batch_size=8, shuffle=True, seed=3)
    expected, expected_losses = _train(init(fl.random.key(0)), alone, epochs=3,
                                       reduce=lambda tree: tree)
    assert len(losses) == len(expected_losses) == 12
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-4, atol=1e-6)
    for name in expected:
        np.testing.assert_allclose(np.asarray(trained[name]), np.asarray(expected[name]),
                                   rtol=1e-4, atol=1e-5)
    # Both ranks end with bit-identical parameters.
    everyone = comm.allgather({name: np.asarray(value) for name, value in trained.items()})
    for name in trained:
        np.testing.assert_array_equal(everyone[0][name], everyone[1][name])


def main():
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    check_ranks(comm)
    check_all_reduce()
    check_broadcast()
    check_shard_agreement()
    check_training(comm)
    print(f"rank {dist.rank()} ok", flush=True)


if __name__ == "__main__":
    main()
