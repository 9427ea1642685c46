"""``loomnet datasets``: the built-in datasets, usable anywhere DATA is asked for as ``builtin:NAME``."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "list the built-in datasets"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, out: Any) -> int:
    from ...io import datasets

    entries = [{"name": name.replace("_", "-"), "spec": f"builtin:{name.replace('_', '-')}", "description": text}
               for name, text in datasets.available().items()]
    width = max(len(e["spec"]) for e in entries)
    lines = [f"{e['spec']:<{width}}  {e['description']}" for e in entries]
    lines.append("generators take sizes: builtin:classification:n_samples=5000,n_features=20,n_classes=3")
    out.result(entries, "\n".join(lines))
    return 0
