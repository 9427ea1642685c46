"""Train a classifier on the built-in 8×8 digits and report held-out accuracy (what `make demo` runs)."""

import time

from loomnet import Adam, Dense, Dropout, Sequential, datasets, train_test_split

X, y = datasets.load_digits()
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, seed=0)

model = Sequential(
    [Dense(128, "relu"), Dropout(0.1), Dense(64, "relu"), Dense(10)],
    loss="cross_entropy",
    optimizer=Adam(learning_rate=2e-3),
    l2=1e-4,
    preprocess="standard",  # fitted on X_train only, carried into predict
    seed=0,
)
start = time.perf_counter()
history = model.fit(X_train, y_train, epochs=60, batch_size=32, validation_split=0.1,
                    early_stopping=10, verbose=True)
elapsed = time.perf_counter() - start
accuracy = float((model.predict(X_test) == y_test).mean())
print(f"stopped: {history.stop_reason} after {len(history)} epochs, {elapsed:.1f} s of training")
print(f"held-out accuracy: {accuracy:.2%}")
