"""ONNX export checked with onnxruntime: every layer and activation, classifiers and regressors,
float32 (≤ 1e-5) and float64 (≤ 1e-10), labels identical; the CLI's table models; clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

import loomnet as ln

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from loomnet.onnx import ExportError, export  # noqa: E402
from tests.cli_helpers import TINY, run_cli, write_people_csv  # noqa: E402

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
ACTIVATIONS = ["identity", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu", "softmax"]


def _run(proto, X, dtype):
    session = ort.InferenceSession(proto.SerializeToString())
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"X": X.astype(dtype)}), strict=True))


@pytest.fixture(scope="module")
def iris(iris):
    return iris.X, iris.y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_and_layer_matches_predict(iris, activation, dtype):
    X, y = iris
    model = ln.Sequential([ln.CategoricalEmbedding([(1, 2)], dims=[3]), ln.PeriodicEmbedding(3, 2),
                           ln.Dense(12, activation), ln.Dropout(0.2), ln.Dense(8, "relu"), ln.BatchNorm(),
                           ln.ActivationLayer("tanh"), ln.Residual.block(8, 6, dropout=0.1), ln.LayerNorm(),
                           ln.Dense(3)], dtype=dtype, seed=0)
    model.fit(X, y, epochs=5, batch_size=16)
    out = _run(export(model, dtype=dtype), X, dtype)
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=TOLERANCE[dtype], rtol=0)
    np.testing.assert_array_equal(out["label"], model.predict(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scaler", ["standard", "minmax", "robust", None])
def test_regression_in_target_units_with_every_scaler(dtype, scaler):
    data = ln.datasets.load("diabetes")
    model = ln.Sequential([ln.Dense(16, "relu"), ln.Dense(1)], loss="mse", preprocess=scaler,
                          target_preprocess="standard", dtype=dtype, seed=0)
    model.fit(data.X, data.y, epochs=5, batch_size=32)
    out = _run(export(model, dtype=dtype), data.X, dtype)
    expected = model.predict(data.X)
    np.testing.assert_allclose(out["variable"][:, 0], expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype] * 300)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_classifier_with_text_labels(dtype):
    data = ln.datasets.load("breast_cancer")
    labels = np.where(data.y == 1, "benign", "malignant")
    model = ln.Sequential([ln.Dense(8, "relu"), ln.Dense(1, "sigmoid")], loss="binary_cross_entropy", dtype=dtype)
    model.fit(data.X, labels, epochs=5, batch_size=32)
    out = _run(export(model, dtype=dtype), data.X, dtype)
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(data.X), atol=TOLERANCE[dtype], rtol=0)
    assert out["label"].tolist() == model.predict(data.X).tolist()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fitted_estimators_export(iris):
    pytest.importorskip("sklearn")
    from loomnet.sklearn import MLPClassifier, MLPRegressor

    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(X, y)
    out = _run(export(clf), X, "float32")
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(X), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(out["label"], clf.predict(X))
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(X[:, :3], X[:, 3])
    out = _run(export(reg, dtype="float64"), X[:, :3], "float64")
    np.testing.assert_allclose(out["variable"][:, 0], reg.predict(X[:, :3]), rtol=1e-10, atol=1e-10)


def test_the_cli_exports_a_numeric_table_model_with_imputation(tmp_path):
    rows = ["a,b,label"] + [f"{'' if i % 9 == 0 else i % 7},{(i * 3) % 11},{'xy'[i % 2]}" for i in range(120)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    assert run_cli("train", "t.csv", "--target", "label", *TINY, "-o", "t.loom", cwd=tmp_path).returncode == 0
    result = run_cli("export", "t.loom", "t.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ONNX opset 17" in result.stdout
    from loomnet.cli.commands import encoder_for
    from loomnet.io.frames import read_frame
    from loomnet.io.modelfile import open_model

    loom = open_model(tmp_path / "t.loom")
    frame = read_frame(str(tmp_path / "t.csv"))
    X = encoder_for(loom, frame).transform(frame)
    raw = np.column_stack([np.where(frame.values["a"] == "", np.nan, frame.values["a"]).astype(float),
                           frame.values["b"].astype(float)])
    session = ort.InferenceSession(str(tmp_path / "t.onnx"))
    proba, label = session.run(["probabilities", "label"], {"X": raw.astype(np.float32)})
    np.testing.assert_allclose(proba, loom.model.predict_proba(X), atol=1e-5)
    assert label.tolist() == loom.model.predict(X).tolist()


def test_categorical_tables_and_unfitted_models_are_refused(tmp_path):
    write_people_csv(tmp_path / "people.csv", n=60)
    assert run_cli("train", "people.csv", "--target", "label", *TINY, "-o", "p.loom", cwd=tmp_path).returncode == 0
    result = run_cli("export", "p.loom", "p.onnx", cwd=tmp_path)
    assert result.returncode == 2 and "categorical column(s) ['city']" in result.stderr
    assert not (tmp_path / "p.onnx").exists()
    with pytest.raises(ExportError, match="fit it before exporting"):
        export(ln.Sequential([ln.Dense(2)]))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_skl2onnx_converts_a_pipeline_ending_in_a_loomnet_estimator(digits, kind):
    skl2onnx = pytest.importorskip("skl2onnx")  # importing it registers loomnet's converters
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from loomnet.sklearn import MLPClassifier, MLPRegressor

    X = digits.X
    if kind == "classifier":
        estimator, y = MLPClassifier(hidden_layer_sizes=(32,), max_iter=20, random_state=0), digits.y
    else:
        estimator, y = MLPRegressor(hidden_layer_sizes=(16,), max_iter=20, random_state=0), X[:, 20] + X[:, 40]
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", estimator)]).fit(X, y)
    options = {id(estimator): {"zipmap": False}} if kind == "classifier" else None
    onx = skl2onnx.to_onnx(pipe, X[:1].astype(np.float32), options=options, target_opset=17)
    session = ort.InferenceSession(onx.SerializeToString())
    outputs = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})
    if kind == "classifier":
        label, proba = outputs
        np.testing.assert_allclose(proba, pipe.predict_proba(X), atol=1e-5)
        np.testing.assert_array_equal(label, pipe.predict(X))
    else:
        np.testing.assert_allclose(outputs[0][:, 0], pipe.predict(X), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("order", ["loomnet first", "skl2onnx first"])
def test_the_converters_are_registered_whichever_is_imported_first(order):
    import subprocess
    import sys

    pytest.importorskip("skl2onnx")
    imports = ["import loomnet.sklearn", "import skl2onnx"]
    code = "\n".join(imports if order == "loomnet first" else imports[::-1]) + (
        "\nfrom skl2onnx.common._registration import get_converter"
        "\nget_converter('LoomnetMLPClassifier'); get_converter('LoomnetMLPRegressor'); print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
