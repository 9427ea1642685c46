"""Optimisers against their textbook formulas; schedules; gradient clipping."""

import math

import numpy as np
import pytest

from loomnet import SGD, Adagrad, Adam, AdamW, RMSprop
from loomnet.engine.optimizers import clip_by_global_norm, get_optimizer
from loomnet.engine.schedules import (
    CosineDecay,
    ExponentialDecay,
    InverseScaling,
    ReduceOnPlateau,
    StepDecay,
    get_schedule,
)


def _run(opt, steps=4, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=6)
    grads = [rng.normal(size=6) for _ in range(steps)]
    out = p.copy()
    for g in grads:
        opt.step(out, g.copy())
    return p, grads, out


def test_sgd_plain_momentum_and_nesterov():
    lr, mu = 0.1, 0.9
    p, grads, out = _run(SGD(lr))
    np.testing.assert_allclose(out, p - lr * sum(grads))
    for nesterov in (False, True):
        p, grads, out = _run(SGD(lr, momentum=mu, nesterov=nesterov))
        ref, v = p.copy(), np.zeros_like(p)
        for g in grads:
            v = mu * v + g
            ref -= lr * (g + mu * v if nesterov else v)
        np.testing.assert_allclose(out, ref, rtol=1e-12)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_and_adamw(decoupled):
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.1
    opt = AdamW(lr, b1, b2, eps, weight_decay=wd) if decoupled else Adam(lr, b1, b2, eps)
    p, grads, out = _run(opt)
    ref, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            ref *= 1 - lr * wd
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        ref -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(out, ref, rtol=1e-10)


def test_rmsprop_and_adagrad():
    p, grads, out = _run(RMSprop(0.01, rho=0.9, epsilon=1e-8))
    ref, s = p.copy(), np.zeros_like(p)
    for g in grads:
        s = 0.9 * s + 0.1 * g * g
        ref -= 0.01 * g / (np.sqrt(s) + 1e-8)
    np.testing.assert_allclose(out, ref, rtol=1e-10)
    p, grads, out = _run(Adagrad(0.1, epsilon=1e-10))
    ref, s = p.copy(), np.zeros_like(p)
    for g in grads:
        s += g * g
        ref -= 0.1 * g / (np.sqrt(s) + 1e-10)
    np.testing.assert_allclose(out, ref, rtol=1e-10)


def test_optimizer_state_round_trip_resumes_exactly():
    a = Adam(0.01)
    p1, grads, _ = _run(a, steps=2)
    state = a.state_dict()
    b = Adam(0.01)
    b.load_state_dict(state)
    x, y = p1.copy(), p1.copy()
    g = np.ones(6)
    a.step(x, g.copy())
    b.step(y, g.copy())
    np.testing.assert_array_equal(x, y)


def test_clip_by_global_norm():
    g = np.array([3.0, 4.0])
    assert clip_by_global_norm(g, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(g, [0.6, 0.8])
    g = np.array([0.3, 0.4])
    clip_by_global_norm(g, 1.0)
    np.testing.assert_allclose(g, [0.3, 0.4])
    opt = SGD(1.0, clip_norm=1.0)
    p = np.zeros(2)
    opt.step(p, np.array([30.0, 40.0]))
    np.testing.assert_allclose(p, [-0.6, -0.8])


def test_schedules():
    assert StepDecay(1.0, step_size=2, gamma=0.5)(3, 0) == 0.5
    assert ExponentialDecay(1.0, gamma=0.9)(2, 0) == pytest.approx(0.81)
    cos = CosineDecay(1.0, epochs=10, min_learning_rate=0.1)
    assert cos(0, 0) == pytest.approx(1.0) and cos(10, 0) == pytest.approx(0.1) and cos(20, 0) == pytest.approx(0.1)
    assert cos(5, 0) == pytest.approx(0.55)
    assert InverseScaling(1.0, power_t=0.5)(0, 3) == pytest.approx(0.5)
    plateau = ReduceOnPlateau(1.0, factor=0.5, patience=1, min_delta=0.0)
    for loss in [1.0, 0.9, 0.95, 0.95]:
        plateau.observe(0, loss)
    assert plateau(0, 0) == 0.5
    assert get_schedule(0.3)(5, 5) == 0.3
    step = get_schedule({"name": "step", "learning_rate": 1.0, "step_size": 1, "gamma": 0.1})
    assert step(1, 0) == pytest.approx(0.1)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf])
def test_non_positive_learning_rate_is_rejected(bad):
    with pytest.raises(ValueError, match="learning rate must be a positive number"):
        SGD(bad)


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'.*adam.*sgd"):
        get_optimizer("adamm")
    assert isinstance(get_optimizer({"name": "sgd", "learning_rate": 0.5, "momentum": 0.9}), SGD)


def _sklearn_form(name, *args, **kwargs):
    """scikit-learn's update forms (that module imports scikit-learn, an optional extra)."""
    pytest.importorskip("sklearn")
    from loomnet.sklearn import conventions

    return getattr(conventions, name)(*args, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make",
    [
        lambda: SGD(0.05),
        lambda: SGD(0.05, momentum=0.9),
        lambda: SGD(0.05, momentum=0.9, nesterov=True),
        lambda: Adam(0.01),
        lambda: AdamW(0.01, weight_decay=0.1),
        lambda: RMSprop(0.01),
        lambda: Adagrad(0.1),
        lambda: _sklearn_form("SklearnSGD", 0.05, momentum=0.9, nesterov=True),
        lambda: _sklearn_form("SklearnAdam", 0.01),
    ],
    ids=["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "sklearn-sgd", "sklearn-adam"],
)
def test_blockwise_update_is_bit_identical_to_one_pass(monkeypatch, make, dtype):
    """The update walks the flat arrays in cache-sized blocks; elementwise math must not notice:
    a size that is not a multiple of the block, compared against one pass over everything."""
    import loomnet.engine.optimizers as optimizers

    n = 3 * 1000 + 17
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=n).astype(dtype)
    grads = [rng.normal(size=n).astype(dtype) for _ in range(3)]
    results = []
    for block in (n + 1, 1000):  # one pass, then 4 blocks (the last one short)
        monkeypatch.setattr(optimizers, "BLOCK", block)
        opt, p = make(), p0.copy()
        for g in grads:
            opt.step(p, g.copy())
        results.append((p, opt.state_dict()["arrays"]))
    (p_one, state_one), (p_blocks, state_blocks) = results
    assert p_one.dtype == dtype
    np.testing.assert_array_equal(p_blocks, p_one)
    assert state_one.keys() == state_blocks.keys()
    for name in state_one:
        np.testing.assert_array_equal(state_blocks[name], state_one[name])


@pytest.mark.parametrize("make", [lambda: SGD(0.05, momentum=0.9, nesterov=True), lambda: Adam(0.01),
                                  lambda: AdamW(0.01, weight_decay=0.1), lambda: RMSprop(0.01),
                                  lambda: _sklearn_form("SklearnAdam", 0.01)],
                         ids=["nesterov", "adam", "adamw", "rmsprop", "sklearn-adam"])
def test_a_step_applied_range_by_range_in_threads_gives_the_bits_of_one_step(monkeypatch, make):
    """begin_step fixes the step's scalars once; workers then update disjoint ranges at once,
    each through its own scratch block (as the synchronous data-parallel workers do)."""
    import threading

    import loomnet.engine.optimizers as optimizers

    monkeypatch.setattr(optimizers, "BLOCK", 700)
    n = 3 * 1000 + 17
    rng = np.random.default_rng(2)
    p0 = rng.normal(size=n).astype(np.float32)
    grads = [rng.normal(size=n).astype(np.float32) for _ in range(3)]
    whole, split = make(), make()
    p_whole, p_split = p0.copy(), p0.copy()
    bounds = [0, 1, 1234, 2900, n]  # uneven ranges, one of a single element
    for g in grads:
        whole.step(p_whole, g.copy())
        update = split.begin_step(p_split, 0.01 if isinstance(split, SGD) else split.learning_rate)
        scratch = [np.empty(700, np.float32) for _ in range(len(bounds) - 1)]
        threads = [threading.Thread(target=update.apply, args=(g, lo, hi, scratch[i]))
                   for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if isinstance(whole, SGD):  # the whole step took its rate from the schedule
        whole, p_whole = make(), p0.copy()
        for g in grads:
            whole.step(p_whole, g.copy(), 0.01)
    np.testing.assert_array_equal(p_split, p_whole)
    assert split.iterations == whole.iterations == 3
    for name, state in whole.state_dict()["arrays"].items():
        np.testing.assert_array_equal(split.state_dict()["arrays"][name], state)


def test_a_cancelled_step_gives_its_iteration_back():
    opt = Adam(0.01)
    p = np.ones(5, np.float32)
    opt.step(p, np.ones(5, np.float32))
    update = opt.begin_step(p, 0.01)
    assert opt.iterations == 2
    update.cancel()
    assert opt.iterations == 1
    applied = opt.begin_step(p, 0.01)
    applied.apply(np.ones(5, np.float32), 0, 2)
    with pytest.raises(RuntimeError, match="cannot be cancelled"):
        applied.cancel()
    assert opt.iterations == 2
    with pytest.raises(ValueError, match="needs the unscaled gradient"):
        opt.begin_step(p, 0.01, grad_scaled=True)


def test_sgd_momentum_is_classic_momentum_when_the_learning_rate_changes():
    """v ← μv + lr_t·g; p ← p - v (Nesterov: p ← p - (lr_t·g + μv)): a new rate applies to new
    gradients only (Keras, scikit-learn); with a constant rate this is PyTorch's update."""
    rng = np.random.default_rng(3)
    p0, grads, rates, mu = rng.normal(size=6), [rng.normal(size=6) for _ in range(4)], [0.1, 0.05, 0.2, 0.01], 0.9
    for nesterov in (False, True):
        opt, out = SGD(0.1, momentum=mu, nesterov=nesterov), p0.copy()
        ref, v = p0.copy(), np.zeros(6)
        for g, lr in zip(grads, rates, strict=True):
            opt.step(out, g.copy(), lr)
            v = mu * v + lr * g
            ref -= lr * g + mu * v if nesterov else v
        np.testing.assert_allclose(out, ref, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [lambda: SGD(0.05), lambda: SGD(0.05, momentum=0.9),
                                  lambda: SGD(0.05, momentum=0.9, nesterov=True),
                                  lambda: _sklearn_form("SklearnSGD", 0.05, momentum=0.9, nesterov=True),
                                  lambda: _sklearn_form("SklearnSGD", 0.05, momentum=0.9, nesterov=False)],
                         ids=["sgd", "momentum", "nesterov", "sklearn-nesterov", "sklearn-momentum"])
def test_a_gradient_already_scaled_by_the_rate_gives_the_same_bits(make, dtype):
    """step(g) and step(lr·g, grad_scaled=True) are the same update: the first multiplies in the
    optimiser, the second lets the caller (the backward pass) do it."""
    rng = np.random.default_rng(4)
    p0 = rng.normal(size=70_000).astype(dtype)  # more than one block
    grads = [rng.normal(size=p0.size).astype(dtype) for _ in range(3)]
    plain, scaled = make(), make()
    a, b = p0.copy(), p0.copy()
    for g in grads:
        plain.step(a, g.copy(), 0.05)
        scaled.step(b, np.multiply(g, dtype(0.05)), 0.05, grad_scaled=True)
    np.testing.assert_array_equal(a, b)


def test_scaled_gradients_are_refused_where_they_would_be_wrong():
    g = np.ones(4)
    for opt in (Adam(), RMSprop(), Adagrad(), SGD(0.1, momentum=0.9, clip_norm=1.0)):
        with pytest.raises(ValueError, match="unscaled gradient"):
            opt.step(np.zeros(4), g, 0.1, grad_scaled=True)


def test_optimizer_state_from_loomnet_0_1_is_converted_or_refused():
    """0.1 kept SGD's velocity in gradient units and Adam's moments as written; loading such a
    state converts it (same update as an uninterrupted 0.1 run, up to rounding) or says why not."""
    rng = np.random.default_rng(8)
    p0, grads = rng.normal(size=5), [rng.normal(size=5) for _ in range(4)]
    # SGD, constant rate: run two steps, save in the 0.1 form (v = u / lr), resume, compare
    lr, mu = 0.1, 0.9
    ref, v = p0.copy(), np.zeros(5)
    for g in grads:
        v = mu * v + g
        ref -= lr * v
    first = SGD(lr, momentum=mu)
    p = p0.copy()
    for g in grads[:2]:
        first.step(p, g.copy())
    old = first.state_dict()
    old.pop("form")
    old["arrays"] = {"velocity": old["arrays"]["velocity"] / lr}
    resumed = SGD(lr, momentum=mu)
    resumed.load_state_dict(old)
    for g in grads[2:]:
        resumed.step(p, g.copy())
    np.testing.assert_allclose(p, ref, rtol=1e-12)
    # Adam: 0.1 saved m and v themselves
    b1, b2 = 0.9, 0.999
    first, p = Adam(0.01), p0.copy()
    for g in grads[:2]:
        first.step(p, g.copy())
    old = first.state_dict()
    old.pop("form")
    old["arrays"] = {"m": old["arrays"]["m"] * (1 - b1), "v": old["arrays"]["v"] * (1 - b2)}
    resumed = Adam(0.01)
    resumed.load_state_dict(old)
    for g in grads[2:]:
        resumed.step(p, g.copy())
    straight, q = Adam(0.01), p0.copy()
    for g in grads:
        straight.step(q, g.copy())
    np.testing.assert_allclose(p, q, rtol=1e-12)
    # SGD under a schedule: no exact conversion, a clear error
    scheduled = SGD(ExponentialDecay(0.1, 0.9), momentum=mu)
    with pytest.raises(ValueError, match="loomnet 0.1"):
        scheduled.load_state_dict({"iterations": 2, "arrays": {"velocity": np.ones(5)}, "schedule": {}})


def test_step_takes_contiguous_arrays_of_any_shape_as_flat_and_refuses_strided_ones():
    p, g = np.zeros((3, 4)), np.ones((3, 4))
    SGD(0.1).step(p, g)
    np.testing.assert_allclose(p, -0.1)
    with pytest.raises(ValueError, match="contiguous"):
        SGD(0.1).step(np.zeros((4, 6))[:, ::2], np.ones((4, 3)))


def test_a_refused_old_state_changes_nothing():
    opt = SGD(StepDecay(0.1, 2, 0.5), momentum=0.9)
    p = np.zeros(3)
    opt.step(p, np.ones(3))
    before = opt.state_dict()
    with pytest.raises(ValueError, match="loomnet 0.1"):
        opt.load_state_dict({"iterations": 7, "arrays": {"velocity": np.full(3, 5.0)}, "schedule": {}})
    after = opt.state_dict()
    assert after["iterations"] == before["iterations"] == 1
    np.testing.assert_array_equal(after["arrays"]["velocity"], before["arrays"]["velocity"])


def test_an_optimizer_pickled_by_0_1_is_upgraded_when_unpickled():
    import pickle

    opt = Adam(0.01)
    p = np.zeros(4)
    opt.step(p, np.ones(4))
    state = opt.state_dict()["arrays"]
    old = Adam(0.01)
    old.__dict__.update(iterations=1, _state={"m": state["m"] * 0.1, "v": state["v"] * 0.001})  # 0.1's m, v
    del old.__dict__["_prepared_for"]  # 0.1 objects had no such attribute
    revived = pickle.loads(pickle.dumps(old))
    np.testing.assert_allclose(revived.state_dict()["arrays"]["m"], state["m"], rtol=1e-12)
    np.testing.assert_allclose(revived.state_dict()["arrays"]["v"], state["v"], rtol=1e-12)
    revived.step(np.zeros(4), np.ones(4))  # usable


@pytest.mark.parametrize("make, grad_scaled, blocks", [
    (lambda: SGD(0.1, momentum=0.9), True, 1), (lambda: SGD(0.1), True, 1),
    (lambda: SGD(0.1, momentum=0.9), False, 4), (lambda: SGD(0.1, momentum=0.9, nesterov=True), True, 4),
    (lambda: Adam(0.01), False, 4)], ids=["momentum-lr-g", "plain-lr-g", "momentum-g", "nesterov-lr-g", "adam"])
def test_only_updates_that_need_a_temporary_walk_the_arrays_in_blocks(monkeypatch, make, grad_scaled, blocks):
    """Blocks keep a temporary's block in cache between passes; without a temporary (momentum
    SGD given lr·g, the training loop's case) each block would only add Python overhead."""
    import loomnet.engine.optimizer_base as optimizers  # where the block size is read

    monkeypatch.setattr(optimizers, "BLOCK", 1000)
    n = 3 * 1000 + 17
    opt, sizes = make(), []
    name = "_update_scaled" if grad_scaled else "_update"
    original = getattr(opt, name)
    monkeypatch.setattr(opt, name, lambda params, *rest: (sizes.append(params.size), original(params, *rest)))
    opt.step(np.zeros(n, np.float32), np.ones(n, np.float32), 0.1, grad_scaled=grad_scaled)
    assert len(sizes) == blocks and sum(sizes) == n, sizes
