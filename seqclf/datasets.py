"""Public datasets written out as CSV in seqclf's own layouts (``seqclf data ...``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqclf.runs import write_text


def digits(output: str | Path, test_size: float = 0.25, seed: int = 0) -> dict[str, Path]:
    """scikit-learn's 8x8 handwritten digits as sequences, in the long layout.

    Each image is read row by row: 8 steps of 8 pixel features (``p0``..``p7``, 0-16),
    labels 0-9. The split is stratified and seeded, so the files are reproducible.
    Bundled with scikit-learn: nothing is downloaded.

    Returns:
        The paths written, by split name (``train``, ``test``).
    """
    import pandas as pd
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images, labels = bunch.images.astype(int), bunch.target
    index = np.arange(len(labels))
    train_idx, test_idx = train_test_split(index, test_size=test_size, random_state=seed,
                                           stratify=labels)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, idx in (("train", np.sort(train_idx)), ("test", np.sort(test_idx))):
        rows = images[idx].reshape(-1, 8)
        frame = pd.DataFrame(rows, columns=[f"p{j}" for j in range(8)])
        frame.insert(0, "step", np.tile(np.arange(8), len(idx)))
        frame.insert(0, "id", np.repeat([f"digit{i:04d}" for i in idx], 8))
        frame["label"] = np.repeat(labels[idx], 8)
        path = output / f"{name}.csv"
        write_text(path, frame.to_csv(index=False))
        written[name] = path
    return written


def reuters(output: str | Path, num_words: int = 30000, maxlen: int = 50,
            test_split: float = 0.3) -> dict[str, Path]:
    """The Keras Reuters newswire subset, through the real ``keras.datasets.reuters`` loader.

    Written in the wide layout: one row per newswire, ``t0``.. one column per word index
    (empty trailing cells for shorter wires), ``label`` 0-45. Keras keeps wires shorter
    than ``maxlen`` words; with the defaults (the classic tutorial's) that is 1395 train
    and 599 test sequences of at most 49 steps. Keras downloads the data once into
    ``$KERAS_HOME/datasets/`` (``~/.keras/datasets/``); offline, put ``reuters.npz`` there.

    Returns:
        The paths written, by split name (``train``, ``test``).
    """
    import pandas as pd

    from seqclf.backend import keras
    from seqclf.errors import must_be

    if num_words < 4:
        raise must_be("seqclf data reuters", "--num-words", ">= 4 (0-2 are reserved)", num_words)
    if maxlen < 2:
        raise must_be("seqclf data reuters", "--maxlen", ">= 2", maxlen)
    if not 0 < test_split < 1:
        raise must_be("seqclf data reuters", "--test-split", "> 0 and < 1", test_split)
    try:
        (x_train, y_train), (x_test, y_test) = keras().datasets.reuters.load_data(
            num_words=num_words, maxlen=maxlen, test_split=test_split)
    except Exception as exc:  # get_file raises URL, HTTP and OS errors alike
        from seqclf.errors import SeqclfError

        raise SeqclfError(
            f"keras.datasets.reuters: could not load reuters.npz ({type(exc).__name__}: {exc}). "
            "Without network access, copy reuters.npz into $KERAS_HOME/datasets/ "
            "(default ~/.keras/datasets/).") from None
    width = max(len(x) for x in [*x_train, *x_test])
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    written = {}
    offset = 0
    for name, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
        cells = np.full((len(xs), width), np.nan)
        for i, x in enumerate(xs):
            cells[i, : len(x)] = x
        frame = pd.DataFrame(cells, columns=[f"t{j}" for j in range(width)]).astype("Int64")
        frame.insert(0, "id", [f"wire{offset + i:05d}" for i in range(len(xs))])
        frame["label"] = np.asarray(ys, dtype=int)
        offset += len(xs)
        path = output / f"{name}.csv"
        write_text(path, frame.to_csv(index=False))
        written[name] = path
    return written
