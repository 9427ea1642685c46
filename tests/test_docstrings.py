"""Public docstrings: every example in a loomnet docstring runs (doctest), and the documented
public API is in numpy style with Parameters and Examples sections."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import loomnet

MODULES = sorted(m.name for m in pkgutil.walk_packages(loomnet.__path__, "loomnet.")
                 if not m.name.startswith("loomnet.distributed.") and not m.name.endswith("__main__")
                 and m.name != "loomnet.sklearn.onnx_converters")
MODULES += ["loomnet.distributed.comm", "loomnet.distributed.trainer"]  # the parts that run in one process
# modules that import without their optional dependency but whose examples need it
EXAMPLES_NEED = {"loomnet.training.tensorboard": "tensorboardX"}
# the public API (what docs/reference documents): the ``__all__`` of these modules
PUBLIC_MODULES = ["loomnet", "loomnet.cli", "loomnet.distributed", "loomnet.explain", "loomnet.io", "loomnet.onnx",
                  "loomnet.parallel", "loomnet.recipes", "loomnet.search", "loomnet.sklearn", "loomnet.training"]


def public_api() -> list:
    """Every class and function named in a public module's ``__all__``, once each."""
    seen: dict[int, object] = {}
    for name in PUBLIC_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional dependency is missing here (scikit-learn for loomnet.sklearn)
            continue
        for attr in module.__all__:
            obj = getattr(module, attr)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__.startswith("loomnet"):
                seen.setdefault(id(obj), obj)
    return sorted(seen.values(), key=lambda o: f"{o.__module__}.{o.__qualname__}")


NUMPY_STYLE = public_api()


def test_every_public_module_declares_its_names():
    for name in PUBLIC_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        assert module.__all__, name
        missing = [attr for attr in module.__all__ if not hasattr(module, attr)]
        assert not missing, f"{name}.__all__ names what it does not have: {missing}"
    assert len(NUMPY_STYLE) > 60


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


@pytest.mark.parametrize("obj", NUMPY_STYLE, ids=lambda o: f"{o.__module__}.{o.__qualname__}")
def test_the_public_api_has_numpy_style_docstrings(obj):
    doc = inspect.getdoc(obj) or ""
    assert "Examples\n--------" in doc and ">>>" in doc, f"{obj.__name__}: no example"
    try:
        signature = inspect.signature(obj)
    except ValueError:  # an exception class that keeps the built-in constructor
        return
    returns = signature.return_annotation
    if inspect.isfunction(obj) and returns not in (None, "None", "Iterator[None]", signature.empty):
        assert "Returns\n-------" in doc, f"{obj.__name__}: returns {returns} but has no Returns section"
    params = [p for p in signature.parameters.values()
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


def test_the_api_reference_covers_every_public_module():
    from pathlib import Path

    pages = "\n".join(p.read_text() for p in (Path(__file__).parents[1] / "docs" / "reference").glob("*.md"))
    rendered = {line.split()[1] for line in pages.splitlines() if line.startswith("::: ")}
    missing = [name for name in PUBLIC_MODULES if not any(r == name or r.startswith(name + ".") for r in rendered)]
    assert not missing, f"public modules without an API reference page: {missing}"
