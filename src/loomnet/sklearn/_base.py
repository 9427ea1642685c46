"""What both estimators share: fit, partial_fit's epoch, the network they build, prediction.

Parameters, fitted attributes and training semantics are scikit-learn 1.9's (see
``conventions.py`` for the definitions that differ from the core); ``dropout``, ``dtype``,
``n_workers``, ``parallel_mode``, the activations 'leaky_relu'/'elu'/'gelu' and the solvers
'adamw'/'rmsprop'/'adagrad' are loomnet's own.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..engine._validation import user_stacklevel
from ..engine.layers import Dense, Dropout
from ..engine.losses import SoftmaxCrossEntropy
from ..engine.network import Sequential
from ..engine.optimizers import Adagrad, AdamW, Optimizer, RMSprop
from ..training import TrainingDivergedError
from ._assigned import adopt_assigned_weights
from ._params import (
    ACTIVATIONS,
    STOCHASTIC_SOLVERS,
    check_sample_weight,
    dtype_name,
    hidden_sizes,
    validate_hyperparameters,
)
from ._training import SklearnBookkeeping, fit_lbfgs, sklearn_trainer
from .conventions import MutableRate, SklearnAdam, SklearnSGD, glorot_uniform_like_sklearn

Array = NDArray[np.floating]
_NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large values and need to be preprocessed."
)


class BaseMLP(BaseEstimator):
    """Shared fit/partial_fit/predict machinery; subclasses say how targets are encoded.

    Parameters are scikit-learn 1.9's ``MLPClassifier``/``MLPRegressor`` ones, with the same
    defaults and meaning, plus loomnet's:

    dropout : float in [0, 1), default 0
        Inverted dropout after every hidden layer (stochastic solvers only).
    dtype : None, 'float32' or 'float64', default None
        Training precision; None follows X like scikit-learn (float32 stays float32, else float64).
    n_workers : None, int or 'auto', default None
        None is the plain loop on this thread (BLAS threads as they are); any integer trains on
        that many worker threads (loomnet.parallel).
    parallel_mode : 'sync', 'hogwild' or 'locked', default 'sync'
        How the workers share a step. 'sync' gives the same parameters, bit for bit, for any
        ``n_workers`` up to ``micro_batches``.
    micro_batches : None or int, default None
        Slices of each batch in 'sync' mode (None: batch_size // 64, from 1 to 8, whatever the machine).

    ``activation`` also takes 'leaky_relu', 'elu', 'gelu'; ``solver`` also 'adamw', 'rmsprop',
    'adagrad' (with ``learning_rate_init``, ``epsilon`` and, for adamw, ``beta_1``/``beta_2``).
    """

    def __init__(
        self,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.dtype = dtype
        self.n_workers = n_workers
        self.parallel_mode = parallel_mode
        self.micro_batches = micro_batches

    # ----------------------------------------------------------------- fitting
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None):
        """Train on (X, y) for up to ``max_iter`` epochs (from scratch unless ``warm_start``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input rows.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classifier) or targets (regressor).
        sample_weight : array-like of shape (n_samples,), optional
            Per-row weights of the loss; None weighs every row the same.

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        ValueError
            If a hyperparameter is invalid (scikit-learn's ``InvalidParameterError``), the inputs
            are inconsistent, or training diverges without ``early_stopping`` to fall back on.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is not stochastic."
            )
        return True

    def _fit(self, X, y, sample_weight, incremental: bool):
        validate_hyperparameters(self)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        if not first_pass:
            adopt_assigned_weights(self)  # coefs_/intercepts_ assigned by hand before partial_fit
        X, y, targets = self._validate_input(X, y, incremental, reset=first_pass)
        if issparse(X):
            X = X.toarray()
        weights = check_sample_weight(sample_weight, X.shape[0])
        random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(X, targets, random_state)
        model = self._model
        if not incremental or not getattr(self, "_has_optimizer", False):
            model.optimizer = self._make_optimizer()
            self._has_optimizer = True
        try:
            if self.solver == "lbfgs":
                Xp = model.prepare_X(X)
                yp = model.prepare_y(targets, fit=True, classes=self._model_classes())
                wp = None if weights is None else weights.astype(model.dtype)
                self.loss_, self.n_iter_ = fit_lbfgs(
                    model, Xp, yp, wp, alpha=self.alpha, max_iter=self.max_iter, max_fun=self.max_fun, tol=self.tol
                )
            else:
                self._fit_stochastic(X, y, targets, weights, random_state, incremental)
        except TrainingDivergedError as exc:
            raise ValueError(_NON_FINITE) from exc
        if not np.isfinite(model.params).all():
            raise ValueError(_NON_FINITE)
        return self

    def _fit_stochastic(self, X, y, targets, weights, random_state, incremental: bool) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        n = X.shape[0]
        train, validation = np.arange(n), None
        if self.early_stopping:
            # The same split scikit-learn draws: same RandomState state, same stratification rule.
            # scikit-learn stratifies on its label-binarized targets as booleans: the same split and,
            # when a class is too rare, the same error naming it ('True')
            stratify = (np.asarray(targets).reshape(n, -1).astype(bool)
                        if is_classifier(self) and self.n_outputs_ == 1 else None)
            train, val = train_test_split(
                np.arange(n), random_state=random_state, test_size=self.validation_fraction, stratify=stratify
            )
            if len(val) < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
                )
            validation = (X[val], y[val], None if weights is None else weights[val])
        n_train = len(train)
        if self.batch_size == "auto":
            batch_size = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                    stacklevel=user_stacklevel(),
                )
            batch_size = int(np.clip(self.batch_size, 1, n_train))
        seed = self.random_state if isinstance(self.random_state, numbers.Integral) else None
        if seed is None and self.dropout:
            seed = int(random_state.randint(np.iinfo(np.int32).max))
        self.n_iter_ = 0
        self._model.l2 = self.alpha / batch_size  # training scales it per batch (BatchL2)
        bookkeeping = SklearnBookkeeping(self, n_train, validation, incremental)
        trainer = sklearn_trainer(
            self._model,
            X[train],
            targets[train],
            alpha=self.alpha,
            random_state=random_state,
            epochs=1 if incremental else self.max_iter,
            batch_size=batch_size,
            sample_weight=None if weights is None else weights[train],
            shuffle=self.shuffle,
            callbacks=[bookkeeping],
            seed=seed,
            classes=self._model_classes(),
            **self._parallel_options(),
        )
        try:
            trainer.run()
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=user_stacklevel())
        except TrainingDivergedError:
            if not (self.early_stopping and np.isfinite(self.validation_scores_ or [np.nan]).any()):
                raise
            # scikit-learn returns from a diverging fit with early stopping: NaN scores, the best weights
            self.n_iter_ += 1
            self.loss_curve_.append(np.nan)
            self.validation_scores_.append(np.nan)
        if self.early_stopping:
            self._model.set_params(self._best_params)

    def _parallel_options(self) -> dict[str, Any]:
        """n_workers/parallel_mode/micro_batches for the core trainer; None is the plain loop."""
        if self.n_workers is None:
            return {} if self.micro_batches is None else {"micro_batches": self.micro_batches}
        return {"workers": self.n_workers, "mode": self.parallel_mode, "micro_batches": self.micro_batches}

    def _initialize(self, X: Array, targets: NDArray, random_state: np.random.RandomState) -> None:
        """Build the network and draw scikit-learn's initial weights; reset the fitted attributes."""
        hidden = hidden_sizes(self.hidden_layer_sizes)
        self.n_outputs_ = 1 if targets.ndim == 1 else targets.shape[1]
        if isinstance(self._loss(), SoftmaxCrossEntropy):
            self.n_outputs_ = len(self.classes_)
        self.n_layers_ = len(hidden) + 2
        self.out_activation_ = self._out_activation()
        layers = []
        for units in hidden:
            layers.append(Dense(units, ACTIVATIONS[self.activation]))
            if self.dropout:
                layers.append(Dropout(self.dropout))
        layers.append(Dense(self.n_outputs_))
        dtype = dtype_name(self.dtype) or ("float32" if X.dtype == np.float32 else "float64")
        seed = self.random_state if isinstance(self.random_state, numbers.Integral) else 0
        model = Sequential(
            layers, loss=self._loss(), optimizer=self._make_optimizer(), preprocess=None, dtype=dtype, seed=int(seed)
        )
        model.build(X.shape[1])
        glorot_uniform_like_sklearn(model, random_state, logistic=self.activation == "logistic")
        self._model = model
        self._link_fitted_weights()
        self._best_params = model.params.copy()
        self.n_iter_, self.t_ = 0, 0
        self._has_optimizer = False
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
            else:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf

    def _link_fitted_weights(self) -> None:
        """coefs_/intercepts_ are views of the model's flat parameters (no copies)."""
        dense = [views for views in self._model.layer_params if "W" in views]
        self.coefs_ = LinkedArrays(views["W"] for views in dense)
        self.intercepts_ = LinkedArrays(views["b"] for views in dense)

    def __setattr__(self, name: str, value: Any) -> None:
        # est.coefs_ = [...] on a fitted estimator writes into the network, as scikit-learn's would be used
        if name in ("coefs_", "intercepts_") and "_model" in self.__dict__ and not isinstance(value, LinkedArrays):
            current = self.__dict__.get(name)
            value = list(value)
            if current is None or len(value) != len(current):
                raise ValueError(f"{name} must hold {0 if current is None else len(current)} arrays, got {len(value)}")
            for i, array in enumerate(value):
                current[i] = array
            return
        super().__setattr__(name, value)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "_model" in self.__dict__:
            self._model.layer_params = self._model.layout.views(self._model.params)
            self._link_fitted_weights()

    def _make_optimizer(self) -> Optimizer:
        lr = float(self.learning_rate_init)
        if self.solver == "sgd":
            optimizer = SklearnSGD(lr, momentum=self.momentum, nesterov=self.nesterovs_momentum)
        elif self.solver in ("adam", "lbfgs"):  # lbfgs never steps it: scipy does the updates
            optimizer = SklearnAdam(lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        elif self.solver == "adamw":
            optimizer = AdamW(lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        elif self.solver == "rmsprop":
            optimizer = RMSprop(lr, epsilon=self.epsilon)
        else:
            optimizer = Adagrad(lr)
        optimizer.schedule = MutableRate(lr)
        return optimizer

    # ----------------------------------------------------------------- prediction
    def _forward(self, X: ArrayLike, check_input: bool = True, raw: bool = False) -> Array:
        """The network's output after the output activation, as scikit-learn's ``_forward_pass_fast``
        (``raw``: before it, the logits)."""
        check_is_fitted(self)
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        if issparse(X):
            X = X.toarray()
        adopt_assigned_weights(self)  # coefs_/intercepts_ assigned by hand on an unfitted estimator
        model = self._model
        X = np.ascontiguousarray(X, dtype=model.dtype)
        out = np.empty((X.shape[0], model.n_outputs), dtype=model.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, X.shape[0], 8192):
                out[start : start + 8192] = model.forward(X[start : start + 8192])[0]
            return out if raw else model.loss.transform(out)

    def _score(self, X, y, sample_weight=None) -> float:
        """Validation score without input checks (keeps feature names out of the way)."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return float(self._score_function(y, y_pred, sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class LinkedArrays(list):
    """``coefs_`` / ``intercepts_``: views of the network's flat parameters. Assigning an item
    (``est.coefs_[1] = W``) copies it into the network, so predictions and further training use it."""

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            raise TypeError("assign the arrays one by one: est.coefs_[i] = array")
        target = list.__getitem__(self, index)
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"expected an array of shape {target.shape}, got {value.shape}")
        np.copyto(target, value, casting="same_kind")
