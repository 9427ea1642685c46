"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's estimators, trained by the loomnet engine.

Each says how its targets are encoded (label binarizer -> class codes or indicator columns;
numeric columns), which loss and output activation it trains, and how outputs become
predictions; everything else is in ``_base.BaseMLP``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ..engine.losses import SoftmaxCrossEntropy
from ._base import BaseMLP
from ._params import check_choice
from .conventions import HalfPoissonDeviance, HalfSquaredError, SummedBinaryCrossEntropy

Array = NDArray[np.floating]


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by loomnet.

    Softmax output for multiclass targets, logistic for binary and multi-label ones; log loss
    plus α/(2·n_batch)·ΣW². ``dtype=None`` trains in float32 for float32 X, float64 otherwise.
    """

    _score_function = staticmethod(accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None, classes: ArrayLike | None = None
    ):
        """One epoch over (X, y); ``classes`` (all labels) is required on the first call."""
        first_call = not hasattr(self, "classes_")
        if first_call and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None:
            classes = unique_labels(classes)
            if not first_call and not np.array_equal(self.classes_, classes):
                raise ValueError(
                    f"`classes={classes}` is not the same as on last call to partial_fit, was: {self.classes_}"
                )
        if first_call:
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
            self.classes_ = self._label_binarizer.classes_
        return self._fit(X, y, sample_weight, incremental=True)

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, dtype=(np.float64, np.float32), reset=reset
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        f"warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        indicator = self._label_binarizer.transform(y)
        if self._label_binarizer.y_type_ == "multiclass":
            return X, y, indicator.argmax(axis=1)  # integer codes for the softmax loss
        if indicator.shape[1] == 1:
            return X, y, indicator[:, 0]  # binary: 0/1 codes, one logistic output
        return X, y, indicator.astype(np.float64)  # multi-label indicator matrix

    def _loss(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return SoftmaxCrossEntropy()
        return SummedBinaryCrossEntropy()

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _model_classes(self) -> NDArray | None:
        if self._label_binarizer.y_type_ == "multiclass":
            return np.arange(len(self.classes_))
        return np.arange(2)

    def _predict(self, X, check_input: bool = True) -> NDArray:
        y_pred = self._forward(X, check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def predict(self, X: ArrayLike) -> NDArray:
        """Predicted class labels (an indicator matrix for multi-label targets)."""
        check_is_fitted(self)
        return self._predict(X)

    def predict_proba(self, X: ArrayLike) -> Array:
        """Class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            return np.hstack([1 - y_pred, y_pred])
        return y_pred

    def predict_log_proba(self, X: ArrayLike) -> Array:
        """Logarithm of ``predict_proba``, computed in log space from the logits: small
        probabilities stay finite (log σ(z) = -log(1 + e^-z), log softmax)."""
        check_is_fitted(self)
        logits = self._forward(X, raw=True).astype(np.float64)
        if self._model.loss.task == "multiclass":
            shifted = logits - logits.max(axis=1, keepdims=True)
            return (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).astype(self._model.dtype)
        log_p = -np.logaddexp(0.0, -logits)
        if self.n_outputs_ == 1:
            log_p = np.hstack([-np.logaddexp(0.0, logits), log_p])
        return log_p.astype(self._model.dtype)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, trained by loomnet.

    Identity output with ½·squared error ('squared_error') or exp output with the half Poisson
    deviance ('poisson'), plus α/(2·n_batch)·ΣW²; several target columns are supported.
    """

    _score_function = staticmethod(r2_score)

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        dtype=None,
        n_workers=None,
        parallel_mode="sync",
        micro_batches=None,
    ):
        self.loss = loss
        kwargs = {k: v for k, v in locals().items() if k not in ("self", "loss", "__class__")}
        super().__init__(**kwargs)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None):
        """One epoch over (X, y), continuing from the current weights and optimiser state."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        check_choice("loss", self.loss, ("squared_error", "poisson"), type(self).__name__)
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson regression.")
        return X, y, y

    def _loss(self):
        return HalfPoissonDeviance() if self.loss == "poisson" else HalfSquaredError()

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _model_classes(self) -> None:
        return None

    def _predict(self, X, check_input: bool = True) -> Array:
        y_pred = self._forward(X, check_input)
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    def predict(self, X: ArrayLike) -> Array:
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
