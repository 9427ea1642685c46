"""``MLPRegressor``: scikit-learn's regressor, trained by the loomnet engine.

It says which loss and output activation it trains (squared error or Poisson) and how outputs
become predictions; everything else is in ``_base.BaseMLP``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._base import BaseMLP
from ._params import check_choice
from .conventions import HalfPoissonDeviance, HalfSquaredError

Array = NDArray[np.floating]


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, trained by loomnet.

    Same parameters, defaults, fitted attributes and error messages as scikit-learn's estimator,
    with dropout, float32 training and multi-core training added. The output is the identity
    with ½·squared error ('squared_error') or the exponential with the half Poisson deviance
    ('poisson'), plus α/(2·n_batch)·ΣW²; several target columns are supported.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default 'squared_error'
        The training loss; 'poisson' needs non-negative targets and predicts exp(output).
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
        'identity' or 'exp'.

    See Also
    --------
    MLPClassifier : The classifier.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.model_selection import train_test_split
    >>> from loomnet.sklearn import MLPRegressor
    >>> X, y = make_regression(n_samples=300, n_features=5, noise=5.0, random_state=0)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y / y.std(), random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    >>> round(reg.fit(X_train, y_train).score(X_test, y_test), 3), reg.n_iter_
    (0.992, 68)
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
        """One epoch over (X, y), continuing from the current weights and optimiser state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input rows.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets.
        sample_weight : array-like of shape (n_samples,), optional
            Per-row weights of the loss.

        Returns
        -------
        self
            The updated estimator.
        """
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
        """Predicted values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input rows.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predictions, in the units of the targets.
        """
        check_is_fitted(self)
        return self._predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
