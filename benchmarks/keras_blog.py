"""The classic Keras Reuters tutorial as a plain Keras 3 script (no seqclf), for comparison.

    python benchmarks/keras_blog.py --model lstm --seed 0

Same data (keras.datasets.reuters, num_words=30000, maxlen=50, test_split=0.3), post
zero-padding to 49 steps, raw word indices as one float feature, one-hot labels over 46
classes, Adam lr 0.001, categorical cross-entropy, batch 50, 200 epochs, no validation.
Prints one JSON line: model, seed, test accuracy, seconds.
"""

from __future__ import annotations

import argparse
import json
import time

MODELS = ("rnn", "lstm", "stacked_lstm")


def run(model_kind: str, seed: int, epochs: int = 200, callbacks: list | None = None) -> dict:
    """Train and score one tutorial model; returns accuracy and wall time.

    ``callbacks`` go to ``model.fit`` (benchmarks/performance.py times epochs with one).
    """
    import keras
    import numpy as np
    from keras.datasets import reuters
    from keras.utils import pad_sequences, to_categorical

    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = reuters.load_data(num_words=30000, maxlen=50,
                                                             test_split=0.3)
    x_train = pad_sequences(x_train, maxlen=49, padding="post").reshape(-1, 49, 1).astype("float32")
    x_test = pad_sequences(x_test, maxlen=49, padding="post").reshape(-1, 49, 1).astype("float32")
    y_train, y_test = to_categorical(y_train, 46), to_categorical(y_test, 46)

    layers = [keras.Input(shape=(49, 1))]
    if model_kind == "rnn":
        layers.append(keras.layers.SimpleRNN(50))
    elif model_kind == "lstm":
        layers.append(keras.layers.LSTM(50))
    else:
        layers += [keras.layers.LSTM(50, return_sequences=True), keras.layers.LSTM(50)]
    model = keras.Sequential(layers + [keras.layers.Dense(46, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    start = time.time()
    model.fit(x_train, y_train, batch_size=50, epochs=epochs, verbose=0, callbacks=callbacks)
    seconds = time.time() - start
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    baseline = float((np.argmax(y_test, 1) == 3).mean())
    return {"model": model_kind, "seed": seed, "accuracy": float(accuracy), "seconds": seconds,
            "epochs": epochs, "baseline": baseline, "n_train": len(x_train), "n_test": len(x_test)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="lstm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(run(args.model, args.seed, args.epochs)))


if __name__ == "__main__":
    main()
