"""XOR, the article's example, done right: a 2-4-1 sigmoid network, MSE, full-batch gradient descent.

The article's own XOR code gets the backward pass wrong; here every gradient is the exact
derivative (tests compare it with finite differences), so plain gradient descent solves XOR.
"""

import numpy as np

from loomnet import SGD, Dense, Sequential, datasets

data = datasets.xor()
X, y = data.X, data.y.astype(float)

model = Sequential(
    [Dense(4, "sigmoid"), Dense(1, "sigmoid")],
    loss="mse",
    optimizer=SGD(learning_rate=2.0),
    preprocess=None,
    dtype="float64",
    seed=1,
)
history = model.fit(X, y, epochs=5000, batch_size="full", shuffle=False, loss_threshold=0.005)
outputs = model.predict(X)
accuracy = float(np.mean((outputs > 0.5) == (y > 0.5)))
for row, out in zip(X, outputs, strict=True):
    print(f"{row.astype(int)} -> {out:.3f}")
print(f"stopped by {history.stop_reason} after {len(history)} epochs; MSE {history['loss'][-1]:.4f}")
print(f"accuracy: {accuracy:.0%}")
