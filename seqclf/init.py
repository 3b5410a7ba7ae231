"""``seqclf init``: a config file written from the data.

``inspect_csv`` guesses a CSV's layout and the roles of its columns from their names and
contents; ``init`` reads the data with those guesses through the real reader
(``seqclf.data.read_sequences``, so every check of ``seqclf train`` applies), profiles it,
asks ``seqclf.models.auto.recommend`` for a model, and writes a commented config that
holds only what differs from the defaults. Nothing here prints or imports TensorFlow.

The guesses (names compared case-insensitively):

* the labels: a column named like ``label``, ``class``, ``target``, ``category`` (or, when
  none of those exists, ``y``);
* the ids: ``id``, ``series``, ``sequence``, ``sample``, ``name`` (or ``<one of those>_id``);
* the steps: ``step``, ``t``, ``time``, ``timestamp``, ``index``;
* the layout: *long* when there are an id and a step column, some id has several rows,
  and the label never changes within an id; otherwise *wide* (one row per sequence; an id
  column there is the id and every other column one step).

A guess that cannot be made (no label-like column, two candidates for one role) is a
one-line error naming the option to pass instead (``--label-column`` and so on).
"""

from __future__ import annotations

import math
import os
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seqclf.config import DataConfig, read_yaml_mapping, resolve_paths, validate_config
from seqclf.errors import SeqclfError, must_be
from seqclf.models.auto import DataProfile, Recommendation, recommend

# Column names per role, lower case; earlier tiers win over later ones.
LABEL_NAMES = (("label", "labels", "class", "classes", "target", "category"), ("y",))
ID_NAMES = (("id", "series", "sequence", "sample", "name", "series_id", "sequence_id",
             "sample_id", "seq_id"),)
STEP_NAMES = (("step", "t", "time", "timestamp", "index", "time_step", "timestep"),)
FORMATS = ("wide", "long")
DEFAULTS = DataConfig(train="-")  # the defaults a written config leaves out
COMMENT_WIDTH = 88


@dataclass
class Inspection:
    """What ``inspect_csv`` made of a CSV file's columns.

    Attributes:
        path: The file.
        columns: Its header.
        format: ``wide`` or ``long``.
        label_column: The labels' column.
        id_column: The ids' column, or None (a wide file without one: sequences numbered).
        step_column: The steps' column (long layout), or None (long: rows in file order;
            wide: not used).
        feature_columns: The value columns (wide: one per step; long: one per channel).
        rows: Data rows in the file.
        guesses: How each role was decided, in words.
    """

    path: Path
    columns: list[str]
    format: str
    label_column: str
    id_column: str | None
    step_column: str | None
    feature_columns: list[str]
    rows: int
    guesses: list[str] = field(default_factory=list)

    def data_config(self, train: str | Path | None = None, test: str | Path | None = None
                    ) -> dict[str, Any]:
        """The ``data`` keys that differ from the defaults (``train``/``test`` as given)."""
        data: dict[str, Any] = {"train": str(train if train is not None else self.path)}
        if test is not None:
            data["test"] = str(test)
        if self.format != DEFAULTS.format:
            data["format"] = self.format
        if self.label_column != DEFAULTS.label_column:
            data["label_column"] = self.label_column
        if self.id_column is not None and self.id_column != DEFAULTS.id_column:
            data["id_column"] = self.id_column
        if self.format == "long" and self.step_column != DEFAULTS.step_column:
            data["step_column"] = self.step_column  # None: rows in file order
        return data

    def describe(self) -> str:
        """One sentence: the layout and the column roles."""
        name = self.path.name
        if self.format == "wide":
            ids = (f"ids in {self.id_column!r}" if self.id_column is not None
                   else "no id column (sequences numbered from 1)")
            return (f"{name}: wide layout (one row per sequence): labels in "
                    f"{self.label_column!r}, {ids}, {len(self.feature_columns)} step "
                    f"column{'s' if len(self.feature_columns) != 1 else ''} "
                    f"({_names(self.feature_columns)})")
        steps = (f"steps in {self.step_column!r}" if self.step_column is not None
                 else "steps in file order")
        return (f"{name}: long layout (one row per step): ids in {self.id_column!r}, "
                f"{steps}, labels in {self.label_column!r}, {len(self.feature_columns)} "
                f"feature column{'s' if len(self.feature_columns) != 1 else ''} "
                f"({_names(self.feature_columns)})")


@dataclass
class InitResult:
    """What ``init`` wrote and why.

    Attributes:
        output: The config file written.
        text: Its contents.
        inspection: The column guesses for the training file.
        profile: The facts the model was chosen from.
        recommendation: The model section, training keys and reasons.
        summary: What was found, in lines (the header comment of the file).
    """

    output: Path
    text: str
    inspection: Inspection
    profile: DataProfile
    recommendation: Recommendation
    summary: list[str]

    @property
    def family(self) -> str:
        return str(self.recommendation.model.get("family", "recurrent"))


def inspect_csv(path: str | os.PathLike, *, label_column: str | None = None,
                id_column: str | None = None, step_column: str | None = None,
                format: str | None = None) -> Inspection:
    """Guess a CSV's layout and column roles; any argument given replaces its guess.

    Raises:
        SeqclfError: The file cannot be read, a named column is missing, or a role cannot
            be guessed (the message names the option to pass).
    """
    from seqclf.data import read_table  # the reader's own checks and messages

    path = Path(path)
    if format is not None and format not in FORMATS:
        raise must_be("seqclf init", "--format", "wide or long", format)
    if step_column is not None and format == "wide":
        raise SeqclfError("seqclf init: --step-column is for the long layout; drop it or "
                          "pass --format long.")
    frame = read_table(path).frame
    columns = [str(c) for c in frame.columns]
    guesses: list[str] = []
    for option, name in (("--label-column", label_column), ("--id-column", id_column),
                         ("--step-column", step_column)):
        if name is not None and name not in columns:
            raise SeqclfError(f"{path}: has no column {name!r} ({option}). Columns: "
                              f"{_names(columns, 12, count=True)}.")

    if label_column is None:
        label_column = _guess(path, columns, LABEL_NAMES, "the labels", "--label-column",
                              required=True)
        guesses.append(f"labels: column {label_column!r} (by its name)")
    others = [c for c in columns if c != label_column]
    if id_column is None:
        id_column = _guess(path, others, ID_NAMES, "the sequence ids", "--id-column")
        if id_column is not None:
            guesses.append(f"ids: column {id_column!r} (by its name)")
    rest = [c for c in others if c != id_column]
    explicit_step = step_column is not None
    if step_column is None and format != "wide":
        step_column = _guess(path, rest, STEP_NAMES, "the steps", "--step-column",
                             required=False, ambiguous_ok=id_column is None)

    repeated = id_column is not None and frame[id_column].nunique(dropna=False) < len(frame)
    if format is None:
        format = _guess_format(path, frame, label_column, id_column, step_column,
                               explicit_step, repeated, guesses)
    else:
        guesses.append(f"layout: {format} (--format)")
    if format == "long":
        if id_column is None:
            raise SeqclfError(f"{path}: cannot tell which column holds the sequence ids of "
                              f"the long layout (columns: {_names(columns, 12, count=True)}). "
                              "Pass --id-column NAME.")
        if step_column is None:
            guesses.append("steps: no step column; rows are taken in file order")
        elif not explicit_step:
            guesses.append(f"steps: column {step_column!r} (by its name)")
    else:
        step_column = None
    roles = {label_column, id_column, step_column}
    features = [c for c in columns if c not in roles]
    if not features:
        raise SeqclfError(f"{path}: has no value columns besides "
                          f"{', '.join(repr(c) for c in columns if c in roles)}. "
                          "Pass --label-column/--id-column/--step-column to name the roles.")
    return Inspection(path=path, columns=columns, format=format, label_column=label_column,
                      id_column=id_column, step_column=step_column, feature_columns=features,
                      rows=len(frame), guesses=guesses)


def _guess(path: Path, columns: list[str], tiers: tuple[tuple[str, ...], ...], role: str,
           option: str, required: bool = False, ambiguous_ok: bool = False) -> str | None:
    """The one column named for a role (the first tier with a match wins)."""
    for names in tiers:
        found = [c for c in columns if c.strip().lower() in names]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            if ambiguous_ok:
                return None
            raise SeqclfError(f"{path}: cannot tell which column holds {role} (candidates: "
                              f"{', '.join(found)}). Pass {option} NAME.")
    if required:
        raise SeqclfError(f"{path}: cannot tell which column holds {role} (columns: "
                          f"{_names(columns, 12, count=True)}). Pass {option} NAME.")
    return None


def _guess_format(path: Path, frame: Any, label: str, ids: str | None, step: str | None,
                  explicit_step: bool, repeated: bool, guesses: list[str]) -> str:
    if ids is not None and step is not None and repeated:
        changes = frame.groupby(ids, sort=False)[label].nunique(dropna=False)
        if (changes > 1).any():
            raise SeqclfError(
                f"{path}: looks like the long layout (ids in {ids!r}, steps in {step!r}) but "
                f"the label changes within id {str(changes.index[changes > 1][0])!r}; seqclf "
                "gives each sequence one label. Pass --label-column NAME, or --format wide "
                "if each row is a sequence.")
        guesses.append(f"layout: long (ids in {ids!r} repeat over rows, steps in {step!r}, "
                       "one label per id)")
        return "long"
    if explicit_step:
        guesses.append("layout: long (--step-column)")
        return "long"
    if repeated:
        raise SeqclfError(
            f"{path}: ids in {ids!r} repeat over rows, as in the long layout, but no step "
            "column was found. Pass --step-column NAME, or --format long to take each id's "
            "rows in file order.")
    guesses.append("layout: wide (one row per sequence)")
    return "wide"


def init(train: str | os.PathLike, test: str | os.PathLike | None = None, *,
         output: str | os.PathLike, force: bool = False, label_column: str | None = None,
         id_column: str | None = None, step_column: str | None = None,
         format: str | None = None, tokens: bool = False,
         data: dict[str, Any] | None = None) -> InitResult:
    """Write a commented config for ``train`` (and ``test``) to ``output``.

    The layout and columns are guessed (``inspect_csv``; the keyword arguments replace
    guesses), the data read as ``seqclf train`` reads it (with ``data``'s keys, e.g.
    ``{"missing_values": "ffill"}``, which the config then holds too), the model chosen by
    ``seqclf.models.auto.recommend`` (``tokens``: the values are integer tokens). The text is validated as ``load_config`` would read
    it at ``output``, then written by ``seqclf.outputs``' rules (atomically to a file; ``-``
    is standard output, a FIFO is written in place; data paths are then absolute).

    Raises:
        SeqclfError: ``output`` exists (without ``force``) or cannot be written; the data
            cannot be read or its columns guessed; too few sequences per class.
    """
    from seqclf.data import check_same_features, read_sequences
    from seqclf.outputs import write_text

    train, output = Path(train), Path(output)
    test = Path(test) if test is not None else None
    in_folder = _check_output(output, force)
    found = inspect_csv(train, label_column=label_column, id_column=id_column,
                        step_column=step_column, format=format)
    extra = dict(data or {})
    for key in ("train", "test", "format", "label_column", "id_column", "step_column"):
        if key in extra:
            raise SeqclfError(f"seqclf init: --set data.{key} is not for init: pass it as "
                              "the argument or option of the same name.")
    data = validate_config({"data": {**found.data_config(), **extra}},
                           where="seqclf init --set").data
    train_set = read_sequences(train, data, missing_values=data.missing_values)
    summary = train_set.summary()
    counts: dict[str, int] = summary["classes"]
    if len(counts) < 2:
        raise SeqclfError(f"{train}: every sequence has the label {next(iter(counts))!r} (column "
                          f"{found.label_column!r}); a classifier needs at least 2 classes. "
                          "Pass --label-column NAME if another column holds the labels.")
    n = len(train_set)
    if len(counts) > n / 2 and n >= 20:
        raise SeqclfError(f"{train}: column {found.label_column!r} has {len(counts)} distinct "
                          f"values in {n} sequences: not class labels. Pass --label-column "
                          "NAME.")
    test_summary = None
    if test is not None:
        test_set = read_sequences(test, data, missing_values=data.missing_values)
        check_same_features(train_set, test_set)
        test_summary = test_set.summary()
    else:
        _check_split(train, counts, DEFAULTS.test_split)
    profile = DataProfile.of(train_set.sequences, train_set.labels, tokens=tokens)
    if tokens and profile.channels != 1:
        raise SeqclfError(f"{train}: --tokens needs one token column per step; the data has "
                          f"{profile.channels} ({_names(found.feature_columns)}).")
    rec = recommend(profile)
    lines = _summary(found, summary, test, test_summary)
    if not tokens and _looks_like_tokens(train_set.sequences):
        lines.append("the values are whole numbers >= 0 with many distinct ones: if they are "
                     "tokens (words, event codes) rather than measurements, run again with "
                     "--tokens.")
    folder = output.parent if in_folder else None  # else (stdout, a pipe): absolute paths
    text = render(found, lines, rec, _relative(train, folder),
                  None if test is None else _relative(test, folder), extra)
    _validate(text, output)
    _check_output(output, force)  # once more: another process may have written it
    write_text(output, text)
    return InitResult(output=output, text=text, inspection=found, profile=profile,
                      recommendation=rec, summary=lines)


# Integer values with at least this many distinct ones look like tokens (a hint only: an
# integer sensor reading looks the same, so init never decides it).
TOKEN_HINT_DISTINCT = 50


def _looks_like_tokens(sequences: list[Any]) -> bool:
    """One channel of whole numbers >= 0 with many distinct values."""
    import numpy as np

    if not sequences or sequences[0].shape[1] != 1:
        return False
    values = np.concatenate([s[:, 0] for s in sequences])
    values = values[~np.isnan(values)]
    return (len(values) > 0 and bool(np.all(values >= 0)) and bool(np.all(values == np.round(values)))
            and len(np.unique(values)) >= TOKEN_HINT_DISTINCT)


def _check_output(output: Path, force: bool) -> bool:
    """Refuse to replace a file without ``force``; whether the config lands in a file
    (relative data paths are then relative to its folder), not a stream (``-``, a FIFO)."""
    from seqclf.outputs import FILE, check_writable

    target = check_writable(output)
    if target.kind == FILE and not force:
        raise SeqclfError(f"{output}: already exists. Pass --force to overwrite it, or "
                          "choose another --output.")
    return target.atomic


def _check_split(train: Path, counts: dict[str, int], fraction: float) -> None:
    """Without a test file, data.test_split holds out a stratified share: can it?"""
    n = sum(counts.values())
    n_test = math.ceil(fraction * n)
    smallest = min(counts, key=counts.__getitem__)
    if counts[smallest] < 2 or n_test < len(counts) or n - n_test < len(counts):
        raise SeqclfError(
            f"{train}: too few sequences to hold out a stratified test set (data.test_split "
            f"{fraction:g} of {n} sequences, {len(counts)} classes, class {smallest!r} has "
            f"{counts[smallest]}). Pass --test TEST.csv, or add sequences.")


def _relative(path: Path, folder: Path | None) -> str:
    """``path`` as the config records it: relative to the config's folder when possible
    (absolute without a folder)."""
    target = path.expanduser().resolve()
    if folder is None:
        return target.as_posix()
    folder = folder.expanduser().resolve()
    try:
        common = Path(os.path.commonpath([target, folder]))
    except ValueError:  # another drive (Windows)
        return target.as_posix()
    if common == Path(common.anchor):  # nothing shared but the root: /work vs /tmp
        return target.as_posix()
    return Path(os.path.relpath(target, folder)).as_posix()


def _summary(found: Inspection, train: dict[str, Any], test: Path | None,
             test_summary: dict[str, Any] | None) -> list[str]:
    counts = train["classes"]
    n = train["sequences"]
    majority = max(counts, key=counts.__getitem__)
    shown = list(counts.items())[:30]
    listing = ", ".join(f"{k}: {v}" for k, v in shown)
    if len(counts) > len(shown):
        listing += f", ... ({len(counts)} classes in all)"
    lines = [
        found.describe() + ".",
        f"{_shape(train)}, {len(counts)} classes ({listing}); the majority class "
        f"{majority!r} is {counts[majority] / n:.1%} of the sequences (the accuracy of "
        "always guessing it).",
    ]
    if test_summary is not None:
        lines.append(f"{test.name}: {_shape(test_summary)}, "
                     f"{len(test_summary['classes'] or {})} classes.")
    else:
        lines.append(f"no test file: data.test_split ({DEFAULTS.test_split:g}) of the "
                     "training sequences is held out for the test, stratified by class.")
    return lines


def _shape(summary: dict[str, Any]) -> str:
    low, high = summary["length"]["min"], summary["length"]["max"]
    length = f"{low}" if low == high else f"{low}-{high}"
    channels = summary["channels"]
    return (f"{summary['sequences']} sequences of {length} steps, {channels} "
            f"channel{'s' if channels != 1 else ''}")


def render(found: Inspection, summary: list[str], rec: Recommendation, train: str,
           test: str | None, extra: dict[str, Any] | None = None) -> str:
    """The config file's text: a header, then data (with ``extra`` data keys), model and
    training sections."""
    out = ["# seqclf config written by `seqclf init` from the data; edit it freely.",
           "# Only what differs from the defaults is here: `seqclf check THIS_FILE` "
           "prints every key.",
           "# Relative paths are relative to this file.", "#"]
    for line in summary:
        out += _comment(line)
    out.append("")
    data = {**found.data_config(train, test), **(extra or {}), **rec.data}
    notes = {"format": "one row per step" if found.format == "long" else "",
             "step_column": "null: each id's rows in file order"
             if found.format == "long" and found.step_column is None else ""}
    out.append("data:")
    out += _section(data, notes)
    out.append("")
    out.append("# The model seqclf.models.auto.recommend chose for this data:")
    for reason in rec.reasons:
        out += _comment(f"- {reason}.", indent="#   ")
    out.append("model:")
    out += _section(rec.model)
    if rec.training:
        out.append("")
        out.append("training:")
        out += _section(rec.training)
    return "\n".join(out) + "\n"


def _comment(text: str, indent: str = "#   ") -> list[str]:
    return textwrap.wrap(text, width=COMMENT_WIDTH, initial_indent="# ",
                         subsequent_indent=indent, break_on_hyphens=False,
                         break_long_words=False)


def _section(values: dict[str, Any], notes: dict[str, str] | None = None) -> list[str]:
    """``key: value`` lines, two spaces in; a one-line key may carry a comment."""
    lines = []
    for key, value in values.items():
        text = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False,
                              allow_unicode=True, width=10**6).rstrip("\n").splitlines()
        note = (notes or {}).get(key)
        if note and len(text) == 1:
            text[0] += f"   # {note}"
        lines += ["  " + line for line in text]
    return lines


def _validate(text: str, output: Path) -> None:
    """Load ``text`` as ``load_config`` loads a file at ``output`` (relative paths against
    its folder), naming ``output`` in any error. The text is read back from a file in a
    private temporary folder, so nothing appears beside ``output`` (which may be in /dev)."""
    from seqclf.outputs import write_text

    with tempfile.TemporaryDirectory(prefix="seqclf-init-") as folder:
        tmp = Path(folder) / "config.yaml"
        write_text(tmp, text)
        try:
            raw = read_yaml_mapping(tmp)
            resolve_paths(raw, output.parent)
            raw.setdefault("name", output.stem if output.stem not in ("", "-") else "config")
            validate_config(raw, where=str(output))
        except SeqclfError as exc:
            raise SeqclfError(f"{output}: not written: the config seqclf init made does not "
                              f"validate ({str(exc).replace(str(tmp), str(output))}).") from None


def _names(names: list[str], limit: int = 6, count: bool = False) -> str:
    """``a, b, c, ..., z``: at most ``limit`` names (with how many in all, if ``count``)."""
    if len(names) <= limit:
        return ", ".join(names)
    return (", ".join(names[: limit - 1]) + f", ..., {names[-1]}"
            + (f" ({len(names)} in all)" if count else ""))


__all__ = ["Inspection", "InitResult", "init", "inspect_csv", "render"]
