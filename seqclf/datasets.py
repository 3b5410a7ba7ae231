"""Public datasets written out as CSV in seqclf's own layouts (``seqclf data ...``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqclf.outputs import is_stdout, make_folder, write_text


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
    output = make_folder(output)
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
    output = make_folder(output)
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


# --- synthetic long time series ------------------------------------------------------

# Class motifs of the synthetic problems, in class order (the most distinct first); each
# is drawn over its width with values in [-1, 1].
MOTIFS = ("bump", "square", "sine", "sawtooth", "spikes", "chirp", "dip", "double_bump",
          "triangle", "step")
SYNTHETIC_PROBLEMS = ("shapes", "order")
# The ordered motif pairs of the ``order`` problem, in class order.
ORDER_PAIRS = ((0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1), (0, 3), (3, 0), (1, 3), (3, 1))


def _motif(name: str, width: int) -> np.ndarray:
    u = np.linspace(0.0, 1.0, width)

    def bump(at: float, spread: float) -> np.ndarray:
        return np.exp(-(((u - at) / spread) ** 2))

    shapes = {
        "bump": lambda: bump(0.5, 0.15),
        "square": lambda: np.where((u > 0.2) & (u < 0.8), 1.0, -0.2),
        "triangle": lambda: 1.0 - np.abs(2.0 * u - 1.0),
        "sine": lambda: np.sin(2 * np.pi * 3 * u),
        "chirp": lambda: np.sin(2 * np.pi * (u + 4 * u**2)),
        "sawtooth": lambda: 2.0 * ((3 * u) % 1.0) - 1.0,
        "dip": lambda: -bump(0.5, 0.15),
        "double_bump": lambda: bump(0.25, 0.08) + bump(0.75, 0.08),
        "step": lambda: np.tanh((u - 0.5) * 20) * bump(0.5, 0.4),  # up, then back
        "spikes": lambda: sum(bump(at, 0.02) for at in (0.1, 0.3, 0.5, 0.7, 0.9)),
    }
    return shapes[name]()


def synthetic_series(n: int, problem: str = "shapes", classes: int = 4, channels: int = 1,
                     length: tuple[int, int] = (400, 600), width: float = 0.08,
                     amplitude: float = 3.0, noise: float = 1.0, distractors: int = 1,
                     seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """Labelled synthetic time series whose class is a shape at a random position.

    Each series has a length drawn uniformly from ``length``, and ``channels`` channels of
    background: white noise of std ``noise`` plus a slow random-walk drift (std about
    ``noise`` over the series), then a random gain (x0.5-2) and offset (+-5) per series,
    so only per-sequence normalisation puts series on a common scale. Into it go:

    * ``shapes``: the class motif (``MOTIFS[class]``: bump, square, sine, sawtooth, ...)
      once, at a random position.
    * ``order``: two motifs one after the other (first in the first half, second in the
      second); the class is the ordered pair (``ORDER_PAIRS``: bump then square, square
      then bump, bump then sine, ...), so the same two shapes make two classes and only
      their order tells them apart.

    Motifs go on the first channel (the informative sensor; any others carry noise, drift
    and distractors only) and are ``width`` x the series length wide (+-20%) with peak
    ``amplitude`` x ``noise`` (+-20%): amplitude/noise is the signal-to-noise ratio, the
    difficulty knob.
    ``distractors`` slow swells (Gaussian, 2-4x a motif's width, random sign and position,
    the same for every class) are added too. Classes are balanced (up to one sequence)
    and shuffled.

    Returns:
        (one float array of shape (steps, channels) per series, one label per series).
    """
    from seqclf.errors import must_be

    where = "seqclf data synthetic"
    if problem not in SYNTHETIC_PROBLEMS:
        raise must_be(where, "--problem", f"one of: {', '.join(SYNTHETIC_PROBLEMS)}", problem)
    limit = len(MOTIFS) if problem == "shapes" else len(ORDER_PAIRS)
    for key, value, ok, constraint in (
            ("--classes", classes, 2 <= classes <= limit,
             f"from 2 to {limit} for --problem {problem}"),
            ("--channels", channels, channels >= 1, ">= 1"),
            ("--min-length", length[0], length[0] >= 20, ">= 20"),
            ("--max-length", length[1], length[1] >= length[0], ">= --min-length"),
            ("--width", width, 0 < width <= 0.3, "> 0 and <= 0.3 (a fraction of the length)"),
            ("--noise", noise, noise > 0, "> 0"),
            ("--distractors", distractors, distractors >= 0, ">= 0")):
        if not ok:
            raise must_be(where, key, constraint, value)
    if n < classes:
        raise must_be(where, "--train/--test", f"at least --classes ({classes}) sequences", n)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % classes)
    series, names = [], []
    for c in labels:
        steps = int(rng.integers(length[0], length[1] + 1))
        drift = np.cumsum(rng.normal(0.0, noise / np.sqrt(steps), (steps, channels)), axis=0)
        x = rng.normal(0.0, noise, (steps, channels)) + drift
        if problem == "shapes":
            motifs, name = [c], MOTIFS[c]
        else:
            motifs = list(ORDER_PAIRS[c])
            name = f"{MOTIFS[motifs[0]]}_then_{MOTIFS[motifs[1]]}"
        for k, motif in enumerate(motifs):
            w = max(4, int(width * steps * rng.uniform(0.8, 1.2)))
            lo, hi = ((0, steps - w) if len(motifs) == 1 else
                      (k * steps // 2, (k + 1) * steps // 2 - w))
            at = int(rng.integers(lo, max(lo, hi) + 1))
            x[at:at + w, 0] += (amplitude * noise * rng.uniform(0.8, 1.2)
                                * _motif(MOTIFS[motif], w))
        for _ in range(distractors):  # a slow swell, wider than any motif
            w = min(steps, max(8, int(width * steps * rng.uniform(2.0, 4.0))))
            at = int(rng.integers(0, steps - w + 1))
            u = np.linspace(-2.0, 2.0, w)
            x[at:at + w, int(rng.integers(channels))] += (
                rng.choice([-1.0, 1.0]) * amplitude * noise * np.exp(-u**2))
        x = x * rng.uniform(0.5, 2.0) + rng.uniform(-5.0, 5.0)
        series.append(x)
        names.append(name)
    return series, names


def write_series(path: str | Path, series: list[np.ndarray], labels: list[str],
                 prefix: str = "s", decimals: int = 3) -> Path:
    """Write series as CSV: the wide layout for one channel, the long layout for several."""
    import pandas as pd

    path = Path(path)
    if not is_stdout(path):
        make_folder(path.parent)
    ids = [f"{prefix}{i:04d}" for i in range(len(series))]
    if series[0].shape[1] == 1:
        width = max(len(s) for s in series)
        cells = np.full((len(series), width), np.nan)
        for i, s in enumerate(series):
            cells[i, : len(s)] = s[:, 0]
        frame = pd.DataFrame(cells.round(decimals), columns=[f"t{j}" for j in range(width)])
        frame.insert(0, "id", ids)
        frame["label"] = labels
    else:
        rows = np.concatenate(series).round(decimals)
        frame = pd.DataFrame(rows, columns=[f"x{j}" for j in range(rows.shape[1])])
        frame.insert(0, "step", np.concatenate([np.arange(len(s)) for s in series]))
        frame.insert(0, "id", np.repeat(ids, [len(s) for s in series]))
        frame["label"] = np.repeat(labels, [len(s) for s in series])
    write_text(path, frame.to_csv(index=False, float_format=f"%.{decimals}f"))
    return path


def synthetic(output: str | Path, train: int = 100, test: int = 100, seed: int = 0,
              **options) -> dict[str, Path]:
    """Write a synthetic problem (see :func:`synthetic_series`) as train.csv and test.csv.

    Training and test series come from one seeded generator, so the files are
    reproducible; one channel is written in the wide layout, several in the long one.

    Returns:
        The paths written, by split name (``train``, ``test``).
    """
    series, labels = synthetic_series(train + test, seed=seed, **options)
    output = make_folder(output)
    return {"train": write_series(output / "train.csv", series[:train], labels[:train], "tr"),
            "test": write_series(output / "test.csv", series[train:], labels[train:], "te")}
