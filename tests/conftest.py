"""Fixtures shared by the whole suite: random generators and the datasets the tests train on."""

import sys
import sysconfig

import numpy as np
import pytest

import loomnet as ln


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def digits():
    """The built-in 8×8 digits (1,797 images, 10 classes): ``.X``, ``.y``."""
    return ln.datasets.load("digits")


@pytest.fixture(scope="session")
def iris():
    """The built-in iris (150 rows, 3 classes): ``.X``, ``.y``."""
    return ln.datasets.load("iris")


@pytest.fixture(scope="session")
def three_classes():
    """A synthetic task: 800 rows, 8 features, 3 classes (``.X``, ``.y``)."""
    return ln.datasets.make_classification(800, 8, n_classes=3, seed=0)


def pytest_sessionfinish(session, exitstatus):
    """On free-threaded CPython the run fails if anything the tests imported turned the GIL back on."""
    if sysconfig.get_config_var("Py_GIL_DISABLED") and sys._is_gil_enabled():
        print("\nthe GIL was enabled during the test run: an extension module imported by the tests does not "
              "declare free-threading support (PYTHON_GIL must be unset to catch this)", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
