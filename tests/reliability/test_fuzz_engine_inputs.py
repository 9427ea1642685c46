"""Fuzz the engine's front door: whatever arrays a user passes to fit/predict, the answer is a
trained model with finite numbers or a one-line ValueError/TypeError, never a crash deep inside."""

from __future__ import annotations

import os
import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loomnet import Dense, Sequential, TrainingDivergedError

DOCUMENTED = (ValueError, TypeError, TrainingDivergedError)
FUZZ = settings(max_examples=int(os.environ.get("LOOMNET_FUZZ_EXAMPLES", 150)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

dtypes = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_,
                          np.complex64, np.dtype("U3"), np.dtype("O")])
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)


@st.composite
def arrays(draw, shape=shapes):
    dtype = draw(dtypes)
    shape = draw(shape)
    if dtype == np.dtype("O"):
        values = draw(st.lists(st.one_of(st.none(), st.floats(), st.text(max_size=3), st.integers(-5, 5)),
                               min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        arr = np.empty(int(np.prod(shape)), dtype=object)
        arr[:] = values
        return arr.reshape(shape)
    return draw(hnp.arrays(dtype, shape))


def one_line(exc: BaseException) -> None:
    assert str(exc) and "\n" not in str(exc), repr(str(exc))


@FUZZ
@given(X=arrays(), y=arrays(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=6)),
       loss=st.sampled_from(["cross_entropy", "binary_cross_entropy", "mse"]),
       batch_size=st.one_of(st.integers(-2, 8), st.just("full"), st.floats(-1, 3)))
def test_fit_on_arbitrary_arrays_trains_or_raises_a_documented_error(X, y, loss, batch_size):
    model = Sequential([Dense(3, "tanh"), Dense(2 if loss == "cross_entropy" else 1)], loss=loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.fit(X, y, epochs=2, batch_size=batch_size)
        except DOCUMENTED as exc:
            one_line(exc)
            return
    assert np.isfinite(model.params).all()
    out = model.predict(X)
    assert len(out) == X.shape[0]


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    model = Sequential([Dense(5, "relu"), Dense(3)])
    model.fit(X, np.arange(40) % 3, epochs=2)
    return model


@FUZZ
@given(X=arrays(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)))
def test_predict_on_arbitrary_arrays_returns_finite_results_or_raises(fitted, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            proba = fitted.predict_proba(X)
        except DOCUMENTED as exc:
            one_line(exc)
            return
    assert np.isfinite(proba).all() and proba.shape == (X.shape[0], 3)
