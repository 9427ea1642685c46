"""A forward pass by hand: one neuron y = f(Σ wᵢxᵢ + b), then a layer, checked against loomnet."""

import numpy as np

from loomnet import Dense, Sequential
from loomnet.engine.activations import Sigmoid

x = np.array([0.5, -1.0, 2.0])
w = np.array([0.4, 0.3, -0.2])
b = 0.1

z = sum(wi * xi for wi, xi in zip(w, x, strict=True)) + b  # Σ wᵢxᵢ + b
y_by_hand = 1.0 / (1.0 + np.exp(-z))                      # f = sigmoid
print(f"one neuron by hand: z = {z:.4f}, y = sigmoid(z) = {y_by_hand:.6f}")

# The same neuron as a loomnet Dense layer with one unit: set its weights, run forward.
model = Sequential([Dense(1, "sigmoid")], loss="mse", preprocess=None, dtype="float64")
model.build(n_features=3)
model.layer_params[0]["W"][:, 0] = w
model.layer_params[0]["b"][:] = b
y_loomnet = model.predict(x.reshape(1, -1))[0]
print(f"loomnet Dense(1, 'sigmoid'):  y = {y_loomnet:.6f}")
assert np.isclose(y_by_hand, y_loomnet)

# A layer of neurons is a matrix product: every row of X times every column of W.
X = np.stack([x, -x])
W = np.stack([w, -w, w * 2], axis=1)           # 3 inputs → 3 neurons
Y = Sigmoid().forward(X @ W + b)
print("a layer of 3 neurons on 2 samples:\n", np.round(Y, 4))
