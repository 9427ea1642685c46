"""scikit-learn compatible estimators: change one import, keep your code.

>>> from loomnet.sklearn import MLPClassifier      # was: from sklearn.neural_network import ...
>>> clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=50).fit(X, y)   # doctest: +SKIP

Needs the optional extra ``loomnet[sklearn]``; this package is the only part of loomnet that
imports scikit-learn.
"""

from .classifier import MLPClassifier
from .onnx_converters import register_when_imported
from .regressor import MLPRegressor

register_when_imported()  # skl2onnx.to_onnx then converts pipelines that end in these estimators

__all__ = ["MLPClassifier", "MLPRegressor"]
