"""One step of gradient descent, with the backpropagated gradient checked against finite differences."""

import numpy as np

from loomnet import Dense, Sequential

rng = np.random.default_rng(0)
X = rng.normal(size=(8, 3))
y = rng.integers(0, 2, size=8)

model = Sequential([Dense(4, "tanh"), Dense(2)], loss="cross_entropy", preprocess=None, dtype="float64")
model.build(3)
Xp, yp = model.prepare_X(X), model.prepare_y(y, fit=True)
theta = model.params.copy()

loss, grad = model.loss_and_grad(theta, Xp, yp)   # backpropagation: exact gradient


def loss_at(params):
    return model.loss_and_grad(params, Xp, yp)[0]


h = 1e-6
numeric = np.array([(loss_at(theta + h * e) - loss_at(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
rel_error = np.linalg.norm(grad - numeric) / np.linalg.norm(numeric)
print(f"{theta.size} parameters; backprop vs finite differences: relative error {rel_error:.2e}")
assert rel_error < 1e-6

learning_rate = 0.5
theta_next = theta - learning_rate * grad         # θ ← θ - η ∇L(θ)
print(f"loss before the step {loss:.5f}, after {loss_at(theta_next):.5f}")
assert loss_at(theta_next) < loss
