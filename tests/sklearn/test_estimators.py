"""loomnet.sklearn: scikit-learn's MLP semantics, checked against formulas and scikit-learn itself."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network as skl  # noqa: E402
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from loomnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _classification(n=120, classes=3, seed=0):
    X, y = make_classification(n_samples=n, n_features=6, n_informative=4, n_classes=classes, random_state=seed)
    return X, y


def _regression(n=120, targets=1, seed=0):
    X, y = make_regression(n_samples=n, n_features=5, n_targets=targets, noise=0.5, random_state=seed)
    return X, y / np.std(y)


# ----------------------------------------------------------------- one step against the formula
def _reference_step(coefs, intercepts, X, Y, w, *, activation, output, alpha, lr):
    """scikit-learn's loss and one plain gradient step, written out independently in float64.

    L = Σᵢ wᵢ·lᵢ / Σw + α/(2·Σw)·Σ‖W‖², lᵢ the log loss (softmax/logistic) or ½·mean squared error;
    dL/dz_out = wᵢ·(out - y)/Σw; W ← W - lr·dL/dW.
    """
    act = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}[activation]
    dact = {"relu": lambda a: (a > 0).astype(float), "tanh": lambda a: 1 - a**2}[activation]
    activations = [X]
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        z = activations[-1] @ W + b
        activations.append(act(z) if i < len(coefs) - 1 else z)
    z = activations[-1]
    if output == "softmax":
        out = np.exp(z - z.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
        per_sample = -(Y * np.log(out)).sum(axis=1)
    elif output == "logistic":
        out = 1 / (1 + np.exp(-z))
        per_sample = -(Y * np.log(out) + (1 - Y) * np.log(1 - out)).sum(axis=1)
    else:
        out = z
        per_sample = 0.5 * ((out - Y) ** 2).mean(axis=1)
    total = w.sum()
    loss = (w * per_sample).sum() / total + 0.5 * alpha * sum((W**2).sum() for W in coefs) / total
    delta = (out - Y) * w[:, None]
    new_coefs, new_intercepts = [], []
    for i in range(len(coefs) - 1, -1, -1):
        grad_W = (activations[i].T @ delta + alpha * coefs[i]) / total
        grad_b = delta.sum(axis=0) / total
        new_coefs.insert(0, coefs[i] - lr * grad_W)
        new_intercepts.insert(0, intercepts[i] - lr * grad_b)
        delta = (delta @ coefs[i].T) * dact(activations[i])
    return loss, new_coefs, new_intercepts


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression", "multioutput"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_one_partial_fit_is_one_gradient_step_on_sklearn_regularised_loss(task, weighted, activation):
    rng = np.random.default_rng(1)
    params = dict(
        hidden_layer_sizes=(7, 4),
        activation=activation,
        solver="sgd",
        momentum=0.0,
        alpha=0.3,
        learning_rate_init=0.05,
        batch_size="auto",
        shuffle=False,
        random_state=0,
        dtype="float64",
    )
    if task in ("multiclass", "binary"):
        X, y = _classification(n=90, classes=3 if task == "multiclass" else 2)
        est = MLPClassifier(**params)
        classes = np.unique(y)
        Y = (y[:, None] == classes[None, :]).astype(float) if task == "multiclass" else y[:, None].astype(float)
        output = "softmax" if task == "multiclass" else "logistic"
        first = dict(classes=classes)
    else:
        X, y = _regression(n=90, targets=1 if task == "regression" else 3)
        est = MLPRegressor(**params)
        Y, output, first = y.reshape(len(y), -1), "identity", {}
    w = rng.uniform(0.2, 2.0, len(y)) if weighted else np.ones(len(y))
    sample_weight = w if weighted else None
    est.partial_fit(X, y, sample_weight=sample_weight, **first)  # initialise and take a first step
    coefs = [W.copy() for W in est.coefs_]
    intercepts = [b.copy() for b in est.intercepts_]

    est.partial_fit(X, y, sample_weight=sample_weight)

    loss, new_coefs, new_intercepts = _reference_step(
        coefs, intercepts, X, Y, w, activation=activation, output=output, alpha=0.3, lr=0.05
    )
    assert est.loss_ == pytest.approx(loss, rel=1e-12)
    for got, expected in zip(est.coefs_ + est.intercepts_, new_coefs + new_intercepts, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    assert est.t_ == 2 * len(y) and est.n_iter_ == 1


# ----------------------------------------------------------------- same numbers as scikit-learn
PARITY_CASES = {
    "adam": dict(),
    "sgd_nesterov_invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.05),
    "sgd_momentum_adaptive": dict(
        solver="sgd",
        nesterovs_momentum=False,
        learning_rate="adaptive",
        tol=0.3,
        n_iter_no_change=1,
        learning_rate_init=0.05,
    ),
    "early_stopping": dict(early_stopping=True, validation_fraction=0.2, n_iter_no_change=3),
    "logistic_small_batches": dict(activation="logistic", batch_size=16, alpha=0.01),
    "lbfgs": dict(solver="lbfgs"),
    "tol_stopping": dict(tol=0.05, n_iter_no_change=2, learning_rate_init=0.01),
}


def _fit_both(cls_loomnet, cls_sklearn, X, y, fit_kwargs=None, **params):
    params = dict(hidden_layer_sizes=(9, 5), max_iter=25, random_state=3, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = cls_loomnet(**params).fit(X, y, **(fit_kwargs or {}))
        theirs = cls_sklearn(**params).fit(X, y, **(fit_kwargs or {}))
    return ours, theirs


def _assert_same_fit(ours, theirs):
    for name in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_", "best_loss_", "best_validation_score_"):
        expected = getattr(theirs, name, None)
        numeric = isinstance(expected, (int, float)) and expected is not None
        assert getattr(ours, name, None) == (pytest.approx(expected, rel=1e-9) if numeric else expected), name
    for name in ("loss_curve_", "validation_scores_"):
        expected = getattr(theirs, name, None)
        if expected is None:
            assert getattr(ours, name, None) is None
        else:
            np.testing.assert_allclose(getattr(ours, name), expected, rtol=1e-9, err_msg=name)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    for got, expected in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("case", list(PARITY_CASES))
def test_classifier_trains_exactly_like_sklearn_with_same_random_state(case):
    X, y = _classification(n=150, classes=3)
    ours, theirs = _fit_both(MLPClassifier, skl.MLPClassifier, X, y, **PARITY_CASES[case])
    _assert_same_fit(ours, theirs)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-7, atol=1e-10)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("target", ["binary", "multilabel", "weighted_multiclass", "string_labels"])
def test_classifier_target_types_match_sklearn(target):
    fit_kwargs = {}
    if target == "multilabel":
        X, y = make_multilabel_classification(n_samples=100, n_features=6, n_classes=4, random_state=0)
    else:
        X, y = _classification(n=100, classes=2 if target == "binary" else 3)
    if target == "weighted_multiclass":
        fit_kwargs["sample_weight"] = np.random.default_rng(0).uniform(0.5, 3, len(y))
    if target == "string_labels":
        y = np.array(["cat", "dog", "emu"])[y]
    ours, theirs = _fit_both(MLPClassifier, skl.MLPClassifier, X, y, fit_kwargs, solver="sgd", learning_rate_init=0.05)
    _assert_same_fit(ours, theirs)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.predict_proba(X).shape == theirs.predict_proba(X).shape


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(loss="poisson", solver="sgd", learning_rate_init=0.01),
        dict(early_stopping=True, solver="sgd", learning_rate_init=0.01),
        dict(solver="lbfgs"),
    ],
    ids=["adam", "poisson", "early_stopping", "lbfgs"],
)
@pytest.mark.parametrize("targets", [1, 3])
def test_regressor_trains_exactly_like_sklearn_with_same_random_state(params, targets):
    X, y = _regression(targets=targets)
    if params.get("loss") == "poisson":
        y = np.abs(y)
    ours, theirs = _fit_both(MLPRegressor, skl.MLPRegressor, X, y, **params)
    _assert_same_fit(ours, theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-7, atol=1e-9)


def test_partial_fit_and_warm_start_continue_like_sklearn():
    X, y = _classification(n=120)
    params = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.05, random_state=0)
    ours, theirs = MLPClassifier(**params), skl.MLPClassifier(**params)
    for start in (0, 40, 80):
        for est in (ours, theirs):
            est.partial_fit(X[start : start + 40], y[start : start + 40], classes=[0, 1, 2])
    _assert_same_fit(ours, theirs)
    ours.set_params(warm_start=True, max_iter=3)
    theirs.set_params(warm_start=True, max_iter=3)
    _assert_same_fit(ours.fit(X, y), theirs.fit(X, y))


def test_fitted_attributes_have_sklearn_names():
    X, y = _classification()
    ours, theirs = _fit_both(MLPClassifier, skl.MLPClassifier, X, y)
    public = {k for k in vars(theirs) if k.endswith("_") and not k.startswith("_")}
    assert public == {k for k in vars(ours) if k.endswith("_") and not k.startswith("_")}
    assert skl.MLPClassifier().get_params().keys() <= MLPClassifier().get_params().keys()
    assert skl.MLPRegressor().get_params().keys() <= MLPRegressor().get_params().keys()


# ----------------------------------------------------------------- scikit-learn tools
@pytest.mark.timeout(300)
def test_works_in_pipeline_gridsearch_and_cross_val_score_with_two_jobs():
    X, y = _classification(n=150)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=60, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3, n_jobs=2)
    assert scores.mean() > 0.5  # three classes: chance is 0.33
    search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=2, n_jobs=2).fit(X, y)
    assert search.best_score_ > 0.5 and search.predict(X).shape == y.shape
    X_reg, y_reg = _regression()
    assert cross_val_score(MLPRegressor(max_iter=80, random_state=0), X_reg, y_reg, cv=2, n_jobs=2).mean() > 0.5


def test_pickle_round_trip_keeps_predictions_and_coefs_stay_live_views():
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0, warm_start=True).fit(X, y)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    before = copy.coefs_[0].copy()
    copy.fit(X, y)
    assert not np.array_equal(copy.coefs_[0], before)  # views were re-linked to the model after unpickling
    np.testing.assert_allclose(copy.predict_proba(X), est.fit(X, y).predict_proba(X))


# ----------------------------------------------------------------- loomnet's extras
@pytest.mark.parametrize(
    "extra",
    [
        dict(dropout=0.2),
        dict(activation="gelu"),
        dict(activation="leaky_relu"),
        dict(solver="rmsprop"),
        dict(solver="adamw"),
        dict(solver="adagrad", learning_rate_init=0.05),
    ],
)
def test_extras_train_to_a_good_score(extra):
    X, y = _classification(n=300, classes=3, seed=2)
    params = dict(hidden_layer_sizes=(32,), max_iter=80, random_state=0, learning_rate_init=0.01)
    est = MLPClassifier(**{**params, **extra}).fit(X, y)
    assert est.score(X, y) > 0.75


def test_dtype_float32_trains_in_float32_and_none_follows_X():
    X, y = _classification()
    assert MLPClassifier(max_iter=3, dtype="float32").fit(X, y).coefs_[0].dtype == np.float32
    assert MLPClassifier(max_iter=3).fit(X.astype(np.float32), y).coefs_[0].dtype == np.float32
    assert MLPClassifier(max_iter=3).fit(X, y).coefs_[0].dtype == np.float64


def test_dropout_is_reproducible_with_an_integer_random_state():
    X, y = _classification()
    a = MLPClassifier(dropout=0.3, max_iter=5, random_state=1).fit(X, y)
    b = MLPClassifier(dropout=0.3, max_iter=5, random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])


@pytest.mark.parametrize(
    "param, value, message",
    [
        ("activation", "swish", "'activation' parameter of MLPClassifier must be a str among .*'relu'.*Got 'swish'"),
        ("solver", "newton", "'solver' parameter of MLPClassifier must be a str among .*'adam'.*Got 'newton'"),
        ("batch_size", 0, "batch_size"),
        ("momentum", 1.5, "momentum"),
        ("dtype", "float16", "dtype"),
    ],
)
def test_bad_hyperparameter_names_the_value_and_valid_choices(param, value, message):
    X, y = _classification()
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**{param: value}).fit(X, y)


def test_partial_fit_is_absent_for_lbfgs_and_rejects_early_stopping():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    X, y = _classification()
    with pytest.raises(ValueError, match="early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, y.astype(float))


def test_only_loomnet_sklearn_imports_scikit_learn():
    code = (
        "import importlib, pathlib, sys, loomnet\n"
        "root = pathlib.Path(loomnet.__file__).parent\n"
        "for path in sorted(root.rglob('*.py')):\n"
        "    parts = path.relative_to(root.parent).with_suffix('').parts\n"
        "    if 'sklearn' in parts or parts[-1] == '__main__':\n"
        "        continue\n"
        "    try: importlib.import_module('.'.join(p for p in parts if p != '__init__'))\n"
        "    except ImportError: pass\n"
        "print('sklearn' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.timeout(120)
def test_n_workers_sync_matches_one_worker_and_hogwild_trains(monkeypatch):
    import loomnet.parallel.runners as runners

    # 'auto' may pick Hogwild when it measures faster (then the bits differ by design): time only the exact plans
    exact = runners.candidate_plans
    monkeypatch.setattr(runners, "candidate_plans", lambda *a: [p for p in exact(*a) if p.mode == "sync"])
    X, y = _classification(n=400, seed=4)
    params = dict(hidden_layer_sizes=(32,), max_iter=15, random_state=0, dtype="float64")
    one = MLPClassifier(**params).fit(X, y)
    two = MLPClassifier(**params, n_workers=2).fit(X, y)
    for a, b in zip(one.coefs_, two.coefs_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)  # same math, micro-batch sums reordered
    auto = MLPClassifier(**params, n_workers="auto").fit(X, y)
    for a, b in zip(one.coefs_, auto.coefs_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)  # 'auto' measures plans without moving the RNG
    hogwild = MLPClassifier(**params, n_workers=2, parallel_mode="hogwild").fit(X, y)
    assert hogwild.score(X, y) > one.score(X, y) - 0.1 and hogwild.n_iter_ == len(hogwild.loss_curve_)


def test_verbose_and_convergence_warning_read_like_sklearn(capsys):
    X, y = _classification()
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, verbose=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iteration 1, loss = ") and len(lines) == 3


def test_the_estimators_warnings_point_at_the_callers_line():
    X, y = _classification()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, batch_size=500, random_state=0).fit(X, y)
        MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=2, random_state=0).fit(X, y)
    assert {type(item.message).__name__ for item in caught} >= {"ConvergenceWarning", "UserWarning"}
    assert [item.filename for item in caught] == [__file__] * len(caught)


def test_adaptive_rate_divides_by_five_until_1e_6_then_stops():
    X, y = _classification()
    est = MLPClassifier(
        hidden_layer_sizes=(4,),
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=0.1,
        tol=1e9,
        n_iter_no_change=1,
        max_iter=100,
        random_state=0,
    ).fit(X, y)
    # Epoch 1 sets best_loss_; then every 2 epochs without a tol=1e9 improvement divide the rate by 5:
    # epochs 3, 5, ..., 17 leave 0.1/5**8 = 2.56e-7, and the trigger at epoch 19 finds it <= 1e-6 and stops.
    assert est.n_iter_ == 19 and est._model.optimizer.schedule.learning_rate == pytest.approx(0.1 / 5**8)
    shared = {k: v for k, v in est.get_params().items() if k in skl.MLPClassifier().get_params()}
    assert skl.MLPClassifier(**shared).fit(X, y).n_iter_ == 19


def test_float32_input_trains_in_float32_close_to_sklearn():
    X, y = _classification(n=200)
    X = X.astype(np.float32)
    ours, theirs = _fit_both(MLPClassifier, skl.MLPClassifier, X, y)
    assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype == np.float32
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-4)


def test_epoch_shuffle_draws_what_sklearn_utils_shuffle_draws():
    """The estimators shuffle with a local copy of scikit-learn's ``shuffle`` (its argument
    checks cost a third of a small epoch); the orders must stay the same, epoch after epoch."""
    from sklearn.utils import shuffle

    from loomnet.sklearn._training import sklearn_shuffle

    ours_rs, theirs_rs = np.random.RandomState(7), np.random.RandomState(7)
    ours = theirs = np.arange(1000)
    for _ in range(5):
        ours = sklearn_shuffle(ours, ours_rs)
        theirs = shuffle(theirs, random_state=theirs_rs)
        np.testing.assert_array_equal(ours, theirs)
    assert ours_rs.randint(1 << 30) == theirs_rs.randint(1 << 30)  # the streams stay in step


def test_an_estimator_pickled_under_the_0_2_module_names_still_loads():
    """0.2 kept the engine in flat modules (loomnet.network, loomnet.optimizers, ...): a pickle naming them loads."""
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 2)
    blob = pickle.dumps(est, protocol=2)  # protocol 2 names classes as text lines: "cMODULE\nNAME\n"
    replaced = 0
    in_0_2 = {b"params": b"network", b"optimizer_base": b"optimizers"}  # split out of these after 0.2
    for module in (b"network", b"layers", b"losses", b"activations", b"preprocessing", b"schedules", b"params",
                   b"optimizer_base", b"optimizers"):
        new_path = b"c" + b"loomnet.engine." + module + b"\n"
        replaced += new_path in blob
        blob = blob.replace(new_path, b"c" + b"loomnet." + in_0_2.get(module, module) + b"\n")
    assert replaced >= 3 and b"loomnet.engine." not in blob
    revived = pickle.loads(blob)
    X = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_array_equal(revived.predict_proba(X), est.predict_proba(X))


def test_small_probabilities_stay_finite_in_log_space_like_scikit_learn():
    """The issue's example: a multilabel lbfgs fit whose scikit-learn log-probabilities go far below -38."""
    X, Y = make_multilabel_classification(n_samples=50, random_state=0)
    ours = MLPClassifier(hidden_layer_sizes=(30,), solver="lbfgs", max_iter=500, random_state=0)
    theirs = skl.MLPClassifier(hidden_layer_sizes=(30,), solver="lbfgs", max_iter=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, Y)
        theirs.fit(X, Y)
    log_ours, log_theirs = ours.predict_log_proba(X), theirs.predict_log_proba(X)
    assert np.isfinite(log_ours[np.isfinite(log_theirs)]).all()
    assert log_ours.min() < -40  # far below where (1 + tanh(z/2))/2 rounds to 0
    np.testing.assert_allclose(np.exp(log_ours), ours.predict_proba(X), rtol=1e-6, atol=1e-12)


def test_sigmoid_keeps_tiny_probabilities():
    from loomnet.engine.activations import sigmoid

    z = np.array([-700.0, -100.0, -40.0, 0.0, 40.0, 700.0])
    np.testing.assert_allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    assert sigmoid(np.array([-80.0], np.float32))[0] > 0  # float32 overflows e^-z only below -88


def test_assigning_coefs_and_intercepts_is_honoured():
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    est.coefs_[1] = np.zeros_like(est.coefs_[1])
    est.intercepts_[1] = np.zeros_like(est.intercepts_[1])
    np.testing.assert_allclose(est.predict_proba(X), 0.5)  # zero output layer: logits 0 everywhere
    weights = [np.full_like(c, 0.01) for c in est.coefs_]
    est.coefs_ = weights
    np.testing.assert_array_equal(est.coefs_[0], weights[0])
    assert np.shares_memory(est.coefs_[0], est._model.params)
    with pytest.raises(ValueError, match="shape"):
        est.coefs_[0] = np.zeros((2, 2))


def test_a_diverging_fit_with_early_stopping_returns_like_scikit_learn():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    options = dict(hidden_layer_sizes=100, activation="identity", solver="sgd", learning_rate_init=1, max_iter=20,
                   early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = skl.MLPRegressor(**options).fit(X, y)
        ours = MLPRegressor(**options).fit(X, y)
    assert np.isnan(theirs.validation_scores_[-1]) and np.isnan(ours.validation_scores_[-1])
    assert np.isfinite(ours.best_validation_score_) and np.isfinite(ours.predict(X)).all()
    with pytest.raises(ValueError, match="non-finite"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MLPRegressor(**dict(options, early_stopping=False)).fit(X, y)


def test_the_stratified_early_stopping_error_reads_as_scikit_learns():
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.array(["a"] * 19 + ["b"])
    messages = []
    for estimator in (skl.MLPClassifier, MLPClassifier):
        with pytest.raises(ValueError) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator(early_stopping=True, max_iter=3).fit(X, y)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("param, value", [("alpha", -1.0), ("max_iter", 0), ("momentum", 2.0), ("tol", -1.0),
                                          ("beta_1", 1.0), ("beta_2", -0.5), ("batch_size", 0), ("power_t", -1.0),
                                          ("n_iter_no_change", 0), ("max_fun", 0), ("learning_rate", "x")])
def test_invalid_hyperparameters_raise_what_scikit_learn_raises(param, value):
    """The same error class (InvalidParameterError, a ValueError) and the same message, word for word."""
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = _classification()
    with pytest.raises(InvalidParameterError) as theirs:
        skl.MLPClassifier(**{param: value}).fit(X, y)
    with pytest.raises(InvalidParameterError) as ours:
        MLPClassifier(**{param: value}).fit(X, y)
    if param == "learning_rate":  # a set: scikit-learn's order of the choices is arbitrary
        assert str(ours.value).split(" among ")[0] == str(theirs.value).split(" among ")[0]
        assert str(ours.value).endswith("Got 'x' instead.") and str(theirs.value).endswith("Got 'x' instead.")
    else:
        assert str(ours.value) == str(theirs.value)
