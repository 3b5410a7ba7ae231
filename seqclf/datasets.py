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
