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
