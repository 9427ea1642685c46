"""A fitted scaling whose result does not fit the model's dtype is refused naming the cell, never a
silent inf or a RuntimeWarning (found by fuzzing a model file's stored mean)."""

import numpy as np
import pytest

from loomnet.engine.scalers import StandardScaler


def test_scaling_that_overflows_float32_is_refused_naming_the_cell():
    scaler = StandardScaler().fit(np.array([[1.0, 2.0], [3.0, 4.0]]))
    scaler.mean_ = np.array([0.0, 4.5e38])
    with pytest.raises(ValueError, match=r"row 0, column 1 overflows float32"):
        scaler.transform(np.ones((3, 2)), dtype=np.float32)
    assert np.isfinite(scaler.transform(np.ones((3, 2)), dtype=np.float64)).all()  # float64 holds it
