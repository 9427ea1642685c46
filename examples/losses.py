"""The article's loss functions by hand — mean squared error and cross-entropy — against loomnet's."""

import numpy as np

from loomnet.engine.activations import softmax
from loomnet.engine.losses import MeanSquaredError, SoftmaxCrossEntropy

# Mean squared error: the mean of the squared differences.
y_true = np.array([[1.0], [0.0], [2.5]])
y_pred = np.array([[0.8], [0.3], [2.0]])
mse_by_hand = np.mean((y_pred - y_true) ** 2)
mse = MeanSquaredError().value(y_pred, y_true)
print(f"MSE by hand {mse_by_hand:.4f}  loomnet {mse:.4f}")

# Cross-entropy: -log of the probability given to the true class. loomnet takes logits and
# computes softmax inside, so that exp never overflows even for huge logits.
logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
labels = np.array([0, 2])
p = softmax(logits)
ce_by_hand = -np.mean(np.log(p[np.arange(2), labels]))
ce = SoftmaxCrossEntropy().value(logits, labels)
print(f"cross-entropy by hand {ce_by_hand:.4f}  loomnet {ce:.4f}")

# Its gradient with respect to the logits is simply softmax(z) - onehot(y), divided by n.
grad = np.empty_like(logits)
SoftmaxCrossEntropy().forward_backward(logits, labels, grad_out=grad)
onehot = np.eye(3)[labels]
print("dL/dz  =", np.round(grad, 4).tolist())
print("(p-y)/n =", np.round((p - onehot) / 2, 4).tolist())
assert np.allclose(grad, (p - onehot) / 2)

huge = np.array([[1000.0, 0.0, -1000.0]])
print(f"stable for logits of ±1000: loss = {SoftmaxCrossEntropy().value(huge, np.array([2])):.1f}")
