"""Public docstrings: every example in a loomnet docstring runs (doctest), and the documented
public API is in numpy style with Parameters and Examples sections."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import loomnet
import loomnet.onnx
import loomnet.recipes
import loomnet.search.jobs

MODULES = sorted(m.name for m in pkgutil.walk_packages(loomnet.__path__, "loomnet.")
                 if not m.name.startswith("loomnet.distributed.") and not m.name.endswith("__main__")
                 and m.name != "loomnet.sklearn.onnx_converters")
# modules that import without their optional dependency but whose examples need it
EXAMPLES_NEED = {"loomnet.training.tensorboard": "tensorboardX"}
# numpy-style docstrings with Parameters, Raises (where it raises) and a runnable example
NUMPY_STYLE = [
    loomnet.Sequential,
    loomnet.Dense, loomnet.Dropout, loomnet.ActivationLayer, loomnet.LayerNorm, loomnet.Residual,
    loomnet.PeriodicEmbedding, loomnet.CategoricalEmbedding,
    loomnet.SGD, loomnet.Adam, loomnet.AdamW, loomnet.RMSprop, loomnet.Adagrad,
    loomnet.Trainer, loomnet.EarlyStopping, loomnet.train_test_split, loomnet.save_model, loomnet.load_model,
    loomnet.Callback, loomnet.OverfittingMonitor, loomnet.training.CSVLogger, loomnet.History, loomnet.MinMaxScaler,
    loomnet.PrefetchLoader, loomnet.fit_stream, loomnet.recipes.tabular_recipe,
    loomnet.grid_search, loomnet.random_search, loomnet.cross_validate, loomnet.bagging, loomnet.search.jobs.run_search,
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", MODULES)
def test_every_docstring_example_runs(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional dependency is missing here
        pytest.skip(str(exc))
    if name in EXAMPLES_NEED:
        pytest.importorskip(EXAMPLES_NEED[name], reason=f"the examples of {name} need {EXAMPLES_NEED[name]}")
    result = doctest.testmod(module, report=True, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"


@pytest.mark.parametrize("obj", NUMPY_STYLE, ids=lambda o: o.__name__)
def test_the_public_api_has_numpy_style_docstrings(obj):
    doc = inspect.getdoc(obj) or ""
    assert "Examples\n--------" in doc and ">>>" in doc, f"{obj.__name__}: no example"
    params = [p for p in inspect.signature(obj).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"]
    if not params:
        return
    assert "Parameters\n----------" in doc, f"{obj.__name__}: no Parameters section"
    documented = set()
    for line in doc.split("Parameters\n----------")[1].splitlines():
        if " : " in line and not line.startswith(" "):
            documented.update(part.strip() for part in line.split(" : ")[0].split(","))
        elif line and not line.startswith(" ") and line.strip().isidentifier():
            documented.add(line.strip())
        elif line and not line.startswith(" ") and "," in line:
            documented.update(part.strip() for part in line.split(","))
    missing = [p.name for p in params if p.name not in documented]
    assert not missing, f"{obj.__name__}: parameters without a description: {missing}"
