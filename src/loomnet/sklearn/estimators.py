"""The two estimators, for code that imports them from here: see ``classifier`` and ``regressor``."""

from .classifier import MLPClassifier
from .regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
