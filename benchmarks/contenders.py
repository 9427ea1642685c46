"""The same MLP, data and optimiser in loomnet, PyTorch (when installed) and scikit-learn.

Each contender trains a ReLU MLP with a softmax cross-entropy loss by momentum SGD (lr 0.01,
momentum 0.9, no weight decay, a fresh shuffle every epoch) on float32 data, and predicts labels
in chunks. ``train_epoch`` returns the wall time of one epoch, setup excluded.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

LEARNING_RATE, MOMENTUM = 0.01, 0.9


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class LoomnetMLP:
    name = "loomnet"

    def __init__(self, n_features: int, hidden: Sequence[int], n_classes: int, seed: int = 0):
        from loomnet.engine.layers import Dense
        from loomnet.engine.network import Sequential
        from loomnet.engine.optimizers import SGD

        layers = [Dense(width, "relu") for width in hidden] + [Dense(n_classes)]
        self.model = Sequential(layers, loss="softmax_cross_entropy", optimizer=SGD(LEARNING_RATE, MOMENTUM),
                                preprocess=None, dtype="float32", seed=seed)
        self.model.build(n_features)
        self._trainer: tuple[int, int, object] | None = None  # (id of X, batch size, Trainer)

    def train_epoch(self, X: NDArray, y: NDArray, batch_size: int) -> float:
        """One more epoch of one Trainer, as ``fit(epochs=...)`` runs them: its buffers are reused,
        each epoch reshuffles (a new Trainer, with its data checks, only for new data)."""
        from loomnet.training import Trainer

        if self._trainer is None or self._trainer[:2] != (id(X), batch_size):
            trainer = Trainer(self.model, X, y, epochs=1, batch_size=batch_size, seed=0,
                              classes=np.arange(self.model.n_outputs))
            self._trainer = (id(X), batch_size, trainer)
        trainer = self._trainer[2]
        trainer.epochs = trainer.epoch + 1
        t0 = time.perf_counter()
        trainer.run()
        return time.perf_counter() - t0

    def predict(self, X: NDArray) -> NDArray:
        return self.model.predict(X)


class TorchMLP:
    name = "pytorch"

    def __init__(self, n_features: int, hidden: Sequence[int], n_classes: int, seed: int = 0):
        import torch

        torch.manual_seed(seed)
        widths = [n_features, *hidden]
        modules: list[torch.nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            modules += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        modules.append(torch.nn.Linear(widths[-1], n_classes))
        self.net = torch.nn.Sequential(*modules)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
        self.loss = torch.nn.CrossEntropyLoss()
        self._tensors: tuple[int, object, object] | None = None

    def _as_tensors(self, X: NDArray, y: NDArray):
        import torch

        if self._tensors is None or self._tensors[0] != id(X):
            self._tensors = (id(X), torch.from_numpy(X), torch.from_numpy(y))  # shares memory, no copy
        return self._tensors[1], self._tensors[2]

    def train_epoch(self, X: NDArray, y: NDArray, batch_size: int) -> float:
        import torch

        X_t, y_t = self._as_tensors(X, y)
        n = X_t.shape[0]
        net, optimizer, loss_fn = self.net, self.optimizer, self.loss
        net.train()
        t0 = time.perf_counter()
        order = torch.randperm(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(X_t[idx]), y_t[idx])
            loss.backward()
            optimizer.step()
            loss.item()  # every contender reads the loss each step, as a training loop does
        return time.perf_counter() - t0

    def predict(self, X: NDArray, chunk_size: int = 8192) -> NDArray:
        import torch

        X_t = torch.from_numpy(X)
        labels = torch.empty(X_t.shape[0], dtype=torch.int64)
        self.net.eval()
        with torch.inference_mode():
            for start in range(0, X_t.shape[0], chunk_size):
                labels[start:start + chunk_size] = self.net(X_t[start:start + chunk_size]).argmax(dim=1)
        return labels.numpy()


class SklearnMLP:
    name = "scikit-learn"

    def __init__(self, n_features: int, hidden: Sequence[int], n_classes: int, seed: int = 0):
        from sklearn.neural_network import MLPClassifier

        self.classes = np.arange(n_classes)
        self.clf = MLPClassifier(hidden_layer_sizes=tuple(hidden), activation="relu", solver="sgd", alpha=0.0,
                                 learning_rate_init=LEARNING_RATE, momentum=MOMENTUM, nesterovs_momentum=False,
                                 shuffle=True, random_state=seed)
        self.started = False

    def train_epoch(self, X: NDArray, y: NDArray, batch_size: int) -> float:
        self.clf.set_params(batch_size=batch_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            if self.started:
                self.clf.partial_fit(X, y)
            else:
                self.clf.partial_fit(X, y, classes=self.classes)
                self.started = True
            return time.perf_counter() - t0

    def predict(self, X: NDArray) -> NDArray:
        return self.clf.predict(X)


class NumpyLoop:
    """A hand-written NumPy training loop of the same step, the third column of issue 6's table.

    What a careful engineer writes without a library: weights and biases in one flat array
    (so one momentum update covers them), buffers allocated once per batch shape, the batch
    gathered with ``take(out=...)``, ReLU, a fused and stable softmax cross-entropy, classic
    momentum (v ← μv + lr·g, p ← p − v).
    """

    name = "numpy loop"

    def __init__(self, n_features: int, hidden: Sequence[int], n_classes: int, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.widths = widths = [n_features, *hidden, n_classes]
        shapes = list(zip(widths[:-1], widths[1:], strict=True))
        sizes = [a * b for a, b in shapes] + [b for _, b in shapes]
        offsets = np.cumsum([0, *sizes])
        self.params, self.grad, self.velocity = (np.zeros(offsets[-1], np.float32) for _ in range(3))

        def views(flat: NDArray) -> tuple[list[NDArray], list[NDArray]]:
            weights = [flat[offsets[i]:offsets[i + 1]].reshape(shape) for i, shape in enumerate(shapes)]
            biases = [flat[offsets[len(shapes) + i]:offsets[len(shapes) + i + 1]] for i in range(len(shapes))]
            return weights, biases

        (self.W, self.b), (self.dW, self.db) = views(self.params), views(self.grad)
        for w in self.W:  # He-normal: the scale of loomnet's He-uniform; the speed does not depend on it
            w[...] = self.rng.standard_normal(w.shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / w.shape[0]))
        self.buffers: dict[int, tuple] = {}

    def _buffers(self, batch: int) -> tuple:
        if batch not in self.buffers:
            acts = [np.empty((batch, w), np.float32) for w in self.widths]
            deltas = [np.empty((batch, w), np.float32) for w in self.widths]
            masks = [np.empty((batch, w), np.float32) for w in self.widths]
            zeros = [np.zeros((batch, w), np.float32) for w in self.widths]  # np.maximum(z, 0) is slower
            self.buffers[batch] = acts, deltas, masks, zeros, np.ones(batch, np.float32), np.empty(batch, np.int64)
        return self.buffers[batch]

    def train_epoch(self, X: NDArray, y: NDArray, batch_size: int) -> float:
        t0 = time.perf_counter()
        order = self.rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            self.step(X, y, order[start:start + batch_size])
        return time.perf_counter() - t0

    def step(self, X: NDArray, y: NDArray, idx: NDArray) -> float:
        n, last = len(idx), len(self.W) - 1
        acts, deltas, masks, zeros, ones, labels = self._buffers(n)
        X.take(idx, axis=0, mode="clip", out=acts[0])
        y.take(idx, mode="clip", out=labels)
        for i, (w, b) in enumerate(zip(self.W, self.b, strict=True)):
            z = np.dot(acts[i], w, out=acts[i + 1])
            z += b
            if i < last:
                np.maximum(z, zeros[i + 1], out=z)
        # softmax cross-entropy, fused: d = (softmax(z) - onehot(y)) · lr / n
        z, d = acts[-1], deltas[-1]
        np.subtract(z, z.max(axis=1, keepdims=True), out=d)
        rows = np.arange(n)
        target = d[rows, labels]  # shifted logits of the true classes (a copy)
        np.exp(d, out=d)
        sums = d.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(sums[:, 0]) - target))
        d /= sums
        d[rows, labels] -= 1.0
        d *= np.float32(LEARNING_RATE / n)
        for i in range(last, -1, -1):
            np.dot(acts[i].T, deltas[i + 1], out=self.dW[i])
            np.dot(ones, deltas[i + 1], out=self.db[i])
            if i > 0:
                dx = np.dot(deltas[i + 1], self.W[i].T, out=deltas[i])
                dx *= np.greater(acts[i], 0, out=masks[i])
        v = self.velocity
        v *= np.float32(MOMENTUM)
        v += self.grad
        self.params -= v
        return loss

    def predict(self, X: NDArray) -> NDArray:
        raise NotImplementedError("a training loop for the benchmark, not a model")


class ProductsOnly:
    """Not a library: the training step's matrix products and nothing else, through NumPy's BLAS.

    Forward products, weight gradients and input gradients (all but the first layer's) of one
    epoch's steps, on preallocated arrays of the step's shapes: no gather, no elementwise work,
    no update. Its speed bounds any implementation of this step that uses NumPy's matrix
    products, loomnet included; its ratio to PyTorch is the most loomnet could reach.
    """

    name = "products only"

    def __init__(self, n_features: int, hidden: Sequence[int], n_classes: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.widths = [n_features, *hidden, n_classes]
        self.weights = [rng.standard_normal((a, b), dtype=np.float32)
                        for a, b in zip(self.widths[:-1], self.widths[1:], strict=True)]
        self.arrays: dict[int, tuple[list[NDArray], list[NDArray], list[NDArray]]] = {}

    def _arrays(self, batch: int) -> tuple[list[NDArray], list[NDArray], list[NDArray]]:
        if batch not in self.arrays:
            rng = np.random.default_rng(batch)
            acts = [rng.standard_normal((batch, w), dtype=np.float32) for w in self.widths]  # X, then each layer's
            deltas = [rng.standard_normal((batch, w), dtype=np.float32) for w in self.widths]
            grads = [np.empty_like(w) for w in self.weights]
            self.arrays[batch] = acts, deltas, grads
        return self.arrays[batch]

    def train_epoch(self, X: NDArray, y: NDArray, batch_size: int) -> float:
        steps = -(-X.shape[0] // batch_size)
        t0 = time.perf_counter()
        for _ in range(steps):  # every step full-sized: the bound is, if anything, too low
            self.step(batch_size)
        return time.perf_counter() - t0

    def step(self, batch: int) -> None:
        acts, deltas, grads = self._arrays(batch)
        weights = self.weights
        for i, w in enumerate(weights):
            np.dot(acts[i], w, out=acts[i + 1])
        for i in range(len(weights) - 1, -1, -1):
            np.dot(acts[i].T, deltas[i + 1], out=grads[i])
            if i > 0:
                np.dot(deltas[i + 1], weights[i].T, out=deltas[i])

    def predict(self, X: NDArray) -> NDArray:
        raise NotImplementedError("a bound on training speed, not a model")


def contenders(include_torch: bool = True) -> list[type]:
    found: list[type] = [LoomnetMLP]
    if include_torch and torch_available():
        found.append(TorchMLP)
    found.append(SklearnMLP)
    return found
