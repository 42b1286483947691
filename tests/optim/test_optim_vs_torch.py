"""Each optimizer takes the same 10 steps as its torch.optim counterpart (float64)."""

import inspect

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import optim

torch = pytest.importorskip("torch")

STEPS = 10
_rng = np.random.default_rng(0)
X = _rng.normal(size=(16, 3))
Y = _rng.normal(size=(16, 2))
W0 = _rng.normal(size=(3, 2))
B0 = _rng.normal(size=(2,))


def fl_loss(p):
    pred = fnp.tanh(X @ p["w"] + p["b"])
    return fnp.mean((pred - Y) ** 2)


def torch_loss(w, b):
    pred = torch.tanh(torch.from_numpy(X) @ w + b)
    return torch.mean((pred - torch.from_numpy(Y)) ** 2)


def run_fl(opt):
    params = {"w": fnp.asarray(W0), "b": fnp.asarray(B0)}
    state = opt.init(params)
    path = []
    for _ in range(STEPS):
        updates, state = opt.update(fl.grad(fl_loss)(params), state, params)
        params = optim.apply_updates(params, updates)
        path.append((np.asarray(params["w"]), np.asarray(params["b"])))
    return path


def run_torch(make_opt, make_scheduler=None):
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opt = make_opt(w, b)
    scheduler = make_scheduler(opt) if make_scheduler else None
    path = []
    for _ in range(STEPS):
        opt.zero_grad()
        torch_loss(w, b).backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
        path.append((w.detach().numpy().copy(), b.detach().numpy().copy()))
    return path


def assert_same_path(ours, theirs):
    for step, ((w, b), (tw, tb)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(w, tw, rtol=1e-10, atol=1e-12, err_msg=f"w, step {step}")
        np.testing.assert_allclose(b, tb, rtol=1e-10, atol=1e-12, err_msg=f"b, step {step}")
    # The problem is not trivial: the parameters moved.
    assert np.abs(ours[-1][0] - W0).max() > 1e-3


CASES = {
    "sgd": (lambda: optim.sgd(0.3), lambda w, b: torch.optim.SGD([w, b], lr=0.3)),
    "sgd_momentum": (lambda: optim.sgd(0.3, momentum=0.9),
                     lambda w, b: torch.optim.SGD([w, b], lr=0.3, momentum=0.9)),
    "sgd_nesterov": (lambda: optim.sgd(0.3, momentum=0.8, nesterov=True),
                     lambda w, b: torch.optim.SGD([w, b], lr=0.3, momentum=0.8,
                                                  nesterov=True)),
    "sgd_coupled_weight_decay": (
        lambda: optim.chain(optim.add_decayed_weights(0.05), optim.sgd(0.3, momentum=0.9)),
        lambda w, b: torch.optim.SGD([w, b], lr=0.3, momentum=0.9, weight_decay=0.05)),
    "adam": (lambda: optim.adam(0.05), lambda w, b: torch.optim.Adam([w, b], lr=0.05)),
    "adam_hypers": (lambda: optim.adam(0.05, b1=0.8, b2=0.95, eps=1e-3),
                    lambda w, b: torch.optim.Adam([w, b], lr=0.05, betas=(0.8, 0.95),
                                                  eps=1e-3)),
    "adamw": (lambda: optim.adamw(0.05, weight_decay=0.3),
              lambda w, b: torch.optim.AdamW([w, b], lr=0.05, weight_decay=0.3)),
    # The mask says which leaves are decayed: torch's two parameter groups.
    "adamw_masked": (
        lambda: optim.adamw(0.05, weight_decay=0.3, mask={"w": True, "b": False}),
        lambda w, b: torch.optim.AdamW([{"params": [w]}, {"params": [b], "weight_decay": 0.0}],
                                       lr=0.05, weight_decay=0.3)),
    "rmsprop": (lambda: optim.rmsprop(0.01), lambda w, b: torch.optim.RMSprop([w, b], lr=0.01)),
    # A large eps makes its placement (after the square root, PyTorch's) matter.
    "rmsprop_large_eps": (lambda: optim.rmsprop(0.01, eps=0.1),
                          lambda w, b: torch.optim.RMSprop([w, b], lr=0.01, eps=0.1)),
    "rmsprop_centered_momentum": (
        lambda: optim.rmsprop(0.01, decay=0.9, centered=True, momentum=0.5),
        lambda w, b: torch.optim.RMSprop([w, b], lr=0.01, alpha=0.9, centered=True,
                                         momentum=0.5)),
    "adagrad": (lambda: optim.adagrad(0.1), lambda w, b: torch.optim.Adagrad([w, b], lr=0.1)),
    "adagrad_hypers": (lambda: optim.adagrad(0.1, initial_accumulator_value=0.5, eps=0.1),
                       lambda w, b: torch.optim.Adagrad([w, b], lr=0.1,
                                                        initial_accumulator_value=0.5,
                                                        eps=0.1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(x64, name):
    ours, theirs = CASES[name]
    assert_same_path(run_fl(ours()), run_torch(theirs))


SCHEDULED = {
    "exponential": (
        lambda: optim.sgd(optim.exponential_decay(0.3, 1, 0.8), momentum=0.5),
        lambda w, b: torch.optim.SGD([w, b], lr=0.3, momentum=0.5),
        lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8)),
    "cosine": (
        lambda: optim.adam(optim.cosine_decay_schedule(0.05, STEPS, alpha=0.1)),
        lambda w, b: torch.optim.Adam([w, b], lr=0.05),
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS,
                                                               eta_min=0.005)),
    "step": (
        lambda: optim.adamw(optim.exponential_decay(0.05, 3, 0.5, staircase=True)),
        lambda w, b: torch.optim.AdamW([w, b], lr=0.05),
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)),
}


@pytest.mark.parametrize("name", sorted(SCHEDULED))
def test_schedules_match_torch_schedulers(x64, name):
    ours, theirs, scheduler = SCHEDULED[name]
    assert_same_path(run_fl(ours()), run_torch(theirs, scheduler))


def test_piecewise_matches_torch_multistep(x64):
    # MultiStepLR has one gamma; piecewise_constant_schedule one scale per boundary.
    ours = optim.sgd(optim.piecewise_constant_schedule(0.3, {2: 0.5, 6: 0.5}), momentum=0.9)
    theirs = run_torch(lambda w, b: torch.optim.SGD([w, b], lr=0.3, momentum=0.9),
                       lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, [2, 6], 0.5))
    assert_same_path(run_fl(ours), theirs)


def test_linear_schedule_matches_torch_linear_lr(x64):
    ours = optim.sgd(optim.linear_schedule(0.3 * 0.25, 0.3, transition_steps=4))
    theirs = run_torch(lambda w, b: torch.optim.SGD([w, b], lr=0.3),
                       lambda opt: torch.optim.lr_scheduler.LinearLR(
                           opt, start_factor=0.25, end_factor=1.0, total_iters=4))
    assert_same_path(run_fl(ours), theirs)


def _defaults(fn):
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_default_hyperparameters_are_pytorchs():
    torch_defaults = {cls: _defaults(cls.__init__) for cls in
                      (torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop,
                       torch.optim.Adagrad)}
    assert (_defaults(optim.adam)["b1"], _defaults(optim.adam)["b2"]) == \
        torch_defaults[torch.optim.Adam]["betas"]
    assert _defaults(optim.adam)["eps"] == torch_defaults[torch.optim.Adam]["eps"]
    assert _defaults(optim.adamw)["weight_decay"] == \
        torch_defaults[torch.optim.AdamW]["weight_decay"]
    assert _defaults(optim.rmsprop)["decay"] == torch_defaults[torch.optim.RMSprop]["alpha"]
    assert _defaults(optim.rmsprop)["eps"] == torch_defaults[torch.optim.RMSprop]["eps"]
    assert _defaults(optim.rmsprop)["centered"] is False
    for key in ("eps", "initial_accumulator_value"):
        assert _defaults(optim.adagrad)[key] == torch_defaults[torch.optim.Adagrad][key]
