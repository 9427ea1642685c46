"""``MLPClassifier``: scikit-learn's classifier, trained by the loomnet engine.

It says how targets are encoded (a label binarizer gives class codes or indicator columns),
which loss and output activation it trains, and how outputs become labels and probabilities;
everything else is in ``_base.BaseMLP``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ..engine.losses import SoftmaxCrossEntropy
from ._base import BaseMLP
from .conventions import SummedBinaryCrossEntropy

Array = NDArray[np.floating]


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by loomnet.

    Same parameters, defaults, fitted attributes and error messages as scikit-learn's estimator
    (change the import, keep the code), with dropout, float32 training and multi-core training
    added. The output is a softmax for multiclass targets and logistic units for binary and
    multi-label ones; the loss is the log loss plus α/(2·n_batch)·ΣW².

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default (100,)
        The number of units in each hidden layer; an int is one hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'elu', 'gelu'}, default 'relu'
        Activation of the hidden layers. The last three are loomnet's additions.
    solver : {'lbfgs', 'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad'}, default 'adam'
        The optimiser. 'lbfgs' is scipy's full-batch quasi-Newton method; the others are
        stochastic, run mini-batches, and support ``partial_fit``, ``dropout`` and ``n_workers``.
        'adamw', 'rmsprop' and 'adagrad' are loomnet's additions (they use
        ``learning_rate_init`` and ``epsilon``; 'adamw' also ``beta_1`` and ``beta_2``).
    alpha : float, default 0.0001
        Strength of the L2 penalty, α/(2·n_batch)·ΣW² on the weights (not the biases), as in
        scikit-learn.
    batch_size : int or 'auto', default 'auto'
        Rows per mini-batch; 'auto' is ``min(200, n_samples)``. Clipped (with a warning) to the
        number of training rows. Ignored by 'lbfgs'.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default 'constant'
        The schedule of 'sgd': constant; ``learning_rate_init / t**power_t``; or divided by 5 each
        time ``n_iter_no_change`` epochs fail to improve by ``tol`` (stopping below 1e-6).
    learning_rate_init : float, default 0.001
        The initial step size of the stochastic solvers.
    power_t : float, default 0.5
        The exponent of 'invscaling'.
    max_iter : int, default 200
        Epochs for the stochastic solvers; iterations for 'lbfgs'.
    shuffle : bool, default True
        Shuffle the rows every epoch (stochastic solvers).
    random_state : int, RandomState instance or None, default None
        Seeds the weight initialisation, the shuffles, the validation split and dropout. An int
        gives the same fit every time, whatever ``n_workers`` is in 'sync' mode.
    tol : float, default 1e-4
        Improvement below which an epoch counts as no progress (see ``n_iter_no_change``).
    verbose : bool, default False
        Print the loss of each epoch, in scikit-learn's words.
    warm_start : bool, default False
        Continue from the previous fit's weights instead of reinitialising.
    momentum : float, default 0.9
        Momentum of 'sgd', in [0, 1].
    nesterovs_momentum : bool, default True
        Nesterov's momentum for 'sgd' when ``momentum > 0``.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the rows (stratified for classifiers), stop when the
        validation score stops improving, and keep the best weights. A diverging fit then returns
        with NaN at the end of ``validation_scores_``, as in scikit-learn.
    validation_fraction : float, default 0.1
        Share of the rows held out by ``early_stopping``.
    beta_1 : float, default 0.9
        Decay of Adam's first-moment estimate, in [0, 1).
    beta_2 : float, default 0.999
        Decay of Adam's second-moment estimate, in [0, 1).
    epsilon : float, default 1e-8
        Adam's numerical-stability term.
    n_iter_no_change : int, default 10
        Epochs without an improvement of ``tol`` before stopping (stochastic solvers).
    max_fun : int, default 15000
        Maximum number of loss evaluations of 'lbfgs'.
    dropout : float in [0, 1), default 0.0
        Inverted dropout after every hidden layer, for the stochastic solvers (loomnet's addition).
    dtype : {None, 'float32', 'float64'}, default None
        Training precision. None follows X, as scikit-learn does: float32 X trains in float32,
        anything else in float64.
    n_workers : None, int or 'auto', default None
        None trains in the plain loop on this thread. An integer trains on that many worker
        threads, with BLAS threads capped so workers × BLAS threads never exceed the cores;
        'auto' times the candidates on the first batches and keeps the fastest.
    parallel_mode : {'sync', 'hogwild', 'locked'}, default 'sync'
        How workers share a step. 'sync' splits every batch into ``micro_batches`` fixed slices
        and adds their gradients in a fixed order: the fitted weights are the same, bit for bit,
        for any ``n_workers``. 'hogwild' and 'locked' update shared weights asynchronously
        (without and with a lock); they are faster on small networks and not reproducible.
    micro_batches : None or int, default None
        Slices of each batch in 'sync' mode; None is ``batch_size // 64`` clipped to [1, 8],
        which does not depend on the machine. At most this many workers share a batch.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        The class labels (for multi-label targets, ``[0, 1]`` per output).
    loss_ : float
        The training loss at the end of the last epoch (or iteration), penalty included.
    best_loss_ : float or None
        The lowest ``loss_curve_`` value; None with ``early_stopping``.
    loss_curve_ : list of float
        The loss of every epoch (stochastic solvers).
    validation_scores_ : list of float or None
        The validation score of every epoch with ``early_stopping``; None otherwise.
    best_validation_score_ : float or None
        The best of ``validation_scores_``; None without ``early_stopping``.
    t_ : int
        Training rows seen by the stochastic solvers.
    coefs_ : list of ndarray
        Weight matrices, ``coefs_[i]`` of shape (units of layer i, units of layer i + 1). Views of
        the network's flat parameters: assigning ``coefs_[i] = W`` (or the whole list, even before
        a fit) is honoured by ``predict`` and further training.
    intercepts_ : list of ndarray
        Bias vectors, likewise.
    n_features_in_ : int
        Number of input columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names of a DataFrame X, when all of them are strings.
    n_iter_ : int
        Epochs (or lbfgs iterations) run.
    n_layers_ : int
        Layers including input and output.
    n_outputs_ : int
        Output units.
    out_activation_ : str
        'softmax' or 'logistic'.

    See Also
    --------
    MLPRegressor : The regressor.
    loomnet.Sequential : The network API, for layers beyond dense ones.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from loomnet.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    >>> pipe = make_pipeline(StandardScaler(), clf).fit(X_train, y_train)
    >>> pipe.score(X_test, y_test), clf.n_iter_
    (1.0, 166)
    >>> pipe.predict_proba(X_test[:1]).round(2)
    array([[1., 0., 0.]])

    In 'sync' mode (the default) the fitted weights do not depend on the number of worker
    threads, dropout included:

    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), solver="sgd", learning_rate_init=0.05,
    ...                     dropout=0.1, early_stopping=True, random_state=0)
    >>> one = clf.set_params(n_workers=1).fit(X / 16, y).coefs_[0].copy()
    >>> two = clf.set_params(n_workers=2).fit(X / 16, y).coefs_[0]
    >>> np.array_equal(one, two)
    True
    """

    _score_function = staticmethod(accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None, classes: ArrayLike | None = None
    ):
        """One epoch over (X, y), continuing from the current weights and optimiser state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input rows.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their labels.
        sample_weight : array-like of shape (n_samples,), optional
            Per-row weights of the loss.
        classes : array-like, optional
            Every label the estimator will ever see; required on the first call, and the same
            on later ones.

        Returns
        -------
        self
            The updated estimator.
        """
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
        """Predicted class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input rows.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            Labels from ``classes_``; an indicator matrix for multi-label targets.
        """
        check_is_fitted(self)
        return self._predict(X)

    def predict_proba(self, X: ArrayLike) -> Array:
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input rows.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``; for multi-label targets, the
            probability of each label on its own.
        """
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            return np.hstack([1 - y_pred, y_pred])
        return y_pred

    def predict_log_proba(self, X: ArrayLike) -> Array:
        """Logarithm of ``predict_proba``, computed in log space from the logits.

        Small probabilities stay finite (log σ(z) = -log(1 + e^-z), the log softmax), where the
        logarithm of ``predict_proba`` would give -inf.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input rows.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns in the order of ``classes_``.
        """
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
