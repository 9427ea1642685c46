"""The benchmark suite's arithmetic: FLOP counts and how speed ratios are summarised (no timing here)."""

import pytest

from benchmarks.__main__ import speedup
from benchmarks.common import training_flops_per_sample, weight_counts


def test_training_flops_count_forward_weight_gradients_and_all_but_the_first_input_gradient():
    weights = weight_counts(784, (512, 256), 10)
    assert weights == [784 * 512, 512 * 256, 256 * 10]
    assert training_flops_per_sample(weights) == 2 * sum(weights) + 2 * sum(weights) + 2 * (512 * 256 + 256 * 10)


def test_speedup_is_the_median_of_each_rounds_own_ratio():
    # round 2 caught a slow moment for both: paired ratios are 2, 2, 2.5 -> 2; the ratio of the
    # two medians (2.5 / 1) would credit loomnet with the other library's slow round
    times = {"loomnet": [1.0, 4.0, 1.0], "pytorch": [2.0, 8.0, 2.5]}
    assert speedup(times, "loomnet", "pytorch", "median") == pytest.approx(2.0)
    assert speedup(times, "pytorch", "loomnet", "median") == pytest.approx(0.5)
    assert speedup(times, "loomnet", "loomnet", "median") == 1.0


def test_speedup_best_compares_the_fastest_round_of_each():
    times = {"loomnet": [1.0, 4.0, 0.8], "pytorch": [2.0, 8.0, 2.5]}
    assert speedup(times, "loomnet", "pytorch", "best") == pytest.approx(2.0 / 0.8)


def test_speedup_refuses_rounds_that_do_not_pair_up():
    with pytest.raises(ValueError):
        speedup({"loomnet": [1.0, 2.0], "pytorch": [1.0]}, "loomnet", "pytorch", "median")


def test_the_hand_written_numpy_loop_takes_the_same_step_as_loomnet():
    """The benchmark's "numpy loop" must be the same training step, or comparing with it means nothing."""
    import numpy as np

    from benchmarks.common import synthetic_classification
    from benchmarks.contenders import LoomnetMLP, NumpyLoop

    X, y = synthetic_classification(300, 20, 4, seed=3)
    loop, loom = NumpyLoop(20, (16, 8), 4, seed=1), LoomnetMLP(20, (16, 8), 4)
    model = loom.model
    model.set_params(loop.params)  # the same flat layout: every weight matrix, then every bias
    from loomnet.training import Trainer
    from loomnet.training.step import UpdateClock

    trainer = Trainer(model, X, y, epochs=1, batch_size=64, classes=np.arange(4))
    rng = np.random.default_rng(0)
    with trainer.runner.session(trainer) as lanes:
        for step in range(5):
            idx = rng.permutation(300)[:64]
            loss_loop = loop.step(X, y, idx)
            clock = UpdateClock(model.optimizer.iterations, 1)
            loss_loom = trainer.step_def.run(lanes[0], 0, step, idx, clock, trainer.runner.gradient)
            assert loss_loop == pytest.approx(loss_loom, rel=1e-5)
            np.testing.assert_allclose(loop.params, model.params, rtol=1e-4, atol=1e-6)
    assert not np.allclose(loop.params, NumpyLoop(20, (16, 8), 4, seed=1).params)  # it did train


def test_freethreaded_ratios_are_each_rounds_own_then_the_median():
    from benchmarks.freethreaded import CASES, MODES, SEARCH_LABEL, render, summarise

    def round_(single, hogwild, search_1, search_2):
        rates = {label: {"single": single, **{mode: hogwild for mode, _ in MODES}} for label, _, _ in CASES}
        return {"rates": rates, "search_s": {"1 thread": search_1, "2 threads": search_2}, "python": "3.x",
                "gil": True, "cores": 2, "numpy": "2", "loomnet": "0"}

    rounds = {"gil": [round_(100, 150, 4, 2), round_(50, 100, 4, 4), round_(10, 12, 4, 1)],
              "ft": [round_(200, 200, 2, 1)] * 3}
    rows = dict(summarise(rounds))
    first = f"{CASES[0][0]}: {MODES[0][0]}"
    assert rows[first] == [1.5, 1.0]            # median of 1.5, 2.0, 1.2 is 1.5; not 262/160 from the rates
    assert rows[f"{SEARCH_LABEL}: 2 threads"] == [2.0, 2.0]
    assert rows[f"{CASES[0][0]}: single, samples/s vs gil"] == [1.0, 4.0]  # 200 against the median 50
    assert "1.50×" in render(rounds, quick=True)


def test_the_tabular_report_names_each_shortfall_with_its_seed_spread():
    from benchmarks.tabular import _report

    def row(name, loomnet, hgb, mlp):
        return {"dataset": name, "task": "regress", "rows": 546, "categorical": 6, "missing": 0, "loomnet": loomnet,
                "hgb": hgb, "mlp": mlp, "loomnet_s": 0.5, "hgb_s": 0.1, "mlp_s": 0.2, "hgb_gap_sd": 1.25,
                "mlp_gap_sd": 0.75}

    text = _report([row("fine", 60.0, 60.9, 59.0), row("behind-mlp", 58.93, 56.82, 61.56),
                    row("behind-hgb", 50.0, 52.5, 49.0)], 3)
    short = text.split("short of the goal")[1]
    assert "fine" not in short
    assert "behind-mlp (regress, 546 rows, 6 categorical): 2.63 behind scikit-learn's MLP (the gap's spread over " \
           "seeds ±0.75)" in short
    assert "behind-hgb" in short and "2.50 behind HistGradientBoosting (the gap's spread over seeds ±1.25)" in short
    assert "short of the goal" not in _report([row("fine", 60.0, 60.9, 59.0)], 3)
