"""Experiments: a base config, the variations to run and the seeds, as one YAML file.

```yaml
base: ../quickstart.yaml        # relative to the experiment file
set: {training.epochs: 5}       # applied to every run
grid:                           # every combination of these values
  model.cell: [lstm, gru]
  model.units: [16, 32]
variants:                       # named variants (crossed with the grid when both are given)
  - name: stacked
    set: {model.depth: 2}
seeds: [0, 1, 2]                # every variant once per seed
```

or, instead of ``grid``/``variants``, a ``search:`` section (``seqclf/search.py``).

Keys are config key paths, as for ``--set``. Every variant's config goes through
``seqclf.config.validate_config`` when the file is loaded, so an unknown key or a bad
value is the same one-line error as in a config file, before anything trains. Each run
is an ordinary run directory ``<output dir>/<experiment>/<variant>/seed-<n>/``; running
the experiment again skips the runs that are complete and replaces unfinished ones.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import signal
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from seqclf import runs
# the same pipeline as --set, so experiment keys behave exactly alike
from seqclf.config import Config, build_config, one_line, read_yaml_mapping
from seqclf.errors import SeqclfError, must_be, show

Announce = Optional[Callable[[str], None]]
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")
NAME_RULE = "a name of letters, digits and . _ + = - (it names a directory)"
SPEC_FILE = "experiment.yaml"
SEED_KEYS = ("training.seed", "training.repeats")


# --- the experiment file -------------------------------------------------------------


class Spec(BaseModel):
    """Base of the experiment file's sections: strict types, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _constraint(text: str) -> PydanticCustomError:
    return PydanticCustomError("constraint", text)


class Variant(Spec):
    """A named variant: config keys it sets on top of the base (and the experiment's set)."""

    name: str
    set: dict[str, Any] = Field(default_factory=dict)


class Param(Spec):
    """One search dimension: exactly one of ``int: [low, high]``, ``float: [low, high]``,
    ``choice: [values]``; ``log: true`` samples a range on a log scale."""

    int_range: Optional[list[int]] = Field(None, alias="int", min_length=2, max_length=2)
    float_range: Optional[list[float]] = Field(None, alias="float", min_length=2, max_length=2)
    choice: Optional[list[Any]] = Field(None, min_length=1)
    log: bool = False

    @field_validator("int_range", "float_range")
    @classmethod
    def _ordered(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and value[0] > value[1]:
            raise _constraint("[low, high] with low <= high")
        return value

    @field_validator("choice")
    @classmethod
    def _plain(cls, value: list[Any] | None) -> list[Any] | None:
        if value is not None and not all(v is None or isinstance(v, (bool, int, float, str))
                                         for v in value):
            raise _constraint("a list of plain values (numbers, strings, true/false, null)")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> "Param":
        kinds = [v for v in (self.int_range, self.float_range, self.choice) if v is not None]
        if len(kinds) != 1:
            raise _constraint("exactly one of int: [low, high], float: [low, high] or "
                              "choice: [values]")
        if self.log and (self.choice is not None or kinds[0][0] <= 0):
            raise _constraint("a range with low > 0 when log is true")
        return self

    def values(self) -> list[Any]:
        """The values that bound the dimension (checked before any trial runs)."""
        return list(self.choice if self.choice is not None else
                    self.int_range if self.int_range is not None else self.float_range)


class Search(Spec):
    """An Optuna search: ``n_trials`` for the whole study, over ``space``."""

    n_trials: int = Field(ge=1)
    space: dict[str, Param] = Field(min_length=1)
    storage: Optional[str] = None
    sampler: Literal["tpe", "random"] = "tpe"


class Experiment(Spec):
    """An experiment file."""

    name: Optional[str] = None
    base: str
    set: dict[str, Any] = Field(default_factory=dict)
    grid: Optional[dict[str, list[Any]]] = None
    variants: Optional[list[Variant]] = None
    seeds: Optional[list[int]] = None
    search: Optional[Search] = None

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or min(value) < 0 or len(set(value)) < len(value)):
            raise _constraint("a non-empty list of distinct integers >= 0")
        return value


# --- expansion -----------------------------------------------------------------------


@dataclass
class PlannedVariant:
    """One variant: its directory name, what the experiment sets for it, its seeds."""

    name: str
    settings: dict[str, Any]
    config: Config
    seeds: list[int]


@dataclass
class Plan:
    """An experiment file, validated and expanded (a search has no variants up front)."""

    path: Path
    spec: Experiment
    name: str
    variants: list[PlannedVariant]
    base: Path  # the base config file

    def directory(self, output_dir: str | Path) -> Path:
        return Path(output_dir) / self.name

    def runs(self) -> list[tuple[PlannedVariant, int]]:
        return [(v, seed) for v in self.variants for seed in v.seeds]

    def config(self, settings: dict[str, Any], name: str) -> Config:
        """Base config + the experiment's ``set`` + ``settings`` (``build_config``: paths
        they name relative to the experiment file)."""
        return build_config(self.base, {**self.spec.set, **settings}, where=str(self.path),
                            relative_to=self.path.parent, name=name)

    def seeds(self, cfg: Config) -> list[int]:
        """The experiment's seeds, or the config's training.seed (and repeats)."""
        return self.spec.seeds or [cfg.training.seed + i for i in range(cfg.training.repeats)]


def load_experiment(path: str | Path) -> Plan:
    """Read, validate and expand an experiment file; nothing is trained or written.

    Raises:
        SeqclfError: One line naming the file and key: a schema error, an unknown config
            key or bad value in any variant, an empty grid, conflicting variants, ...
    """
    path = Path(path)
    try:
        spec = Experiment.model_validate(read_yaml_mapping(path))
    except ValidationError as exc:
        raise one_line(exc, Experiment, str(path)) from None
    name = spec.name or path.stem
    if not NAME.fullmatch(name):
        raise must_be(path, "name", NAME_RULE, name)
    base = path.parent / spec.base
    build_config(base)  # problems in the base config itself are reported against its file
    plan = Plan(path, spec, name, [], base)
    _check_keys(plan)
    if spec.search is not None:
        for key, param in spec.search.space.items():
            for value in param.values():
                plan.config({key: value}, name)
    else:
        plan.variants = _expand(plan)
    return plan


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _check_keys(plan: Plan) -> None:
    spec, where = plan.spec, plan.path
    grid, variants = spec.grid, spec.variants
    if spec.search is not None and (grid is not None or variants is not None):
        raise SeqclfError(f"{where}: search cannot be combined with grid or variants: the "
                          "search chooses the variants. Use one or the other.")
    if grid is not None and not grid:
        raise must_be(where, "grid", "a mapping of config keys to lists of values", grid)
    for key, values in (grid or {}).items():
        texts = [json.dumps(v, sort_keys=True) for v in values]
        if not values or len(set(texts)) < len(texts):
            raise must_be(where, f"grid.{key}", "a non-empty list of distinct values", values)
    if variants is not None and not variants:
        raise must_be(where, "variants", "a non-empty list of {name, set}", variants)
    seen: set[str] = set()
    for i, variant in enumerate(variants or []):
        if not NAME.fullmatch(variant.name):
            raise must_be(where, f"variants[{i}].name", NAME_RULE, variant.name)
        if variant.name in seen:
            raise must_be(where, f"variants[{i}].name", "unique among the variants",
                          variant.name)
        seen.add(variant.name)
        for key in variant.set:
            clash = next((g for g in grid or {} if _overlap(key, g)), None)
            if clash is not None:
                raise SeqclfError(f"{where}: variants[{i}] ({variant.name}) sets {key}, which "
                                  f"the grid also varies ({clash}). Set it in one place.")
    if spec.seeds is not None:
        keys = [*spec.set, *(grid or {}), *(k for v in variants or [] for k in v.set),
                *(spec.search.space if spec.search else {})]
        for key in keys:
            if any(_overlap(key, s) for s in SEED_KEYS):
                raise SeqclfError(f"{where}: {key} cannot be set when seeds is given: seeds "
                                  "sets each run's training.seed. Drop one of them.")


def _slug(value: Any) -> str:
    if isinstance(value, list):
        return "x".join(map(_slug, value))
    text = value if isinstance(value, str) else json.dumps(value)
    return re.sub(r"[^A-Za-z0-9.+-]", "-", text)


def _grid_points(grid: dict[str, list[Any]] | None) -> list[tuple[str, dict[str, Any]]]:
    """(name, settings) for every combination; names use the key's last part when unique."""
    if not grid:
        return [("", {})]
    keys = list(grid)
    leaves = [k.rsplit(".", 1)[-1] for k in keys]
    labels = [leaf if leaves.count(leaf) == 1 else key for key, leaf in zip(keys, leaves)]
    return [("_".join(f"{label}-{_slug(v)}" for label, v in zip(labels, values)),
             dict(zip(keys, values))) for values in itertools.product(*grid.values())]


def _expand(plan: Plan) -> list[PlannedVariant]:
    spec = plan.spec
    out: list[PlannedVariant] = []
    names: dict[str, str] = {}
    configs: dict[str, str] = {}
    for variant in spec.variants or [Variant(name="")]:
        for point, values in _grid_points(spec.grid):
            name = "_".join(filter(None, (variant.name, point))) or "base"
            settings = {**variant.set, **values}
            cfg = plan.config(settings, name)
            if name in names:
                raise SeqclfError(f"{plan.path}: two variants get the directory name {name!r} "
                                  f"({names[name]} and {_settings_text(settings)}). Make the "
                                  "values or variant names differ.")
            same = json.dumps({**cfg.to_dict(), "name": None}, sort_keys=True)
            if same in configs:
                raise SeqclfError(f"{plan.path}: variants {configs[same]!r} and {name!r} give "
                                  "the same config. Drop one or make them differ.")
            names[name], configs[same] = _settings_text(settings), name
            out.append(PlannedVariant(name, settings, cfg, plan.seeds(cfg)))
    return out


def _settings_text(settings: dict[str, Any]) -> str:
    return " ".join(f"{k}={v if isinstance(v, str) else show(v)}" for k, v in settings.items()) \
        or "(base config)"


def with_seed(cfg: Config, seed: int) -> Config:
    """A copy of ``cfg`` for one run: this seed, one repeat."""
    one = cfg.model_copy(deep=True)
    one.training.seed, one.training.repeats = seed, 1
    one._source = cfg.source
    return one


# --- running -------------------------------------------------------------------------


def run_dir(exp_dir: Path, variant: str, seed: int) -> Path:
    return exp_dir / variant / f"seed-{seed}"


def is_complete(path: Path, cfg: Config) -> bool:
    """Whether ``path`` holds a finished run of ``cfg``.

    Raises:
        SeqclfError: It finished, but with another config (the experiment or its base
            changed since): reusing it would mix results of different configs.
    """
    if not (path / runs.MANIFEST).is_file() or (path / runs.INCOMPLETE).exists():
        return False
    try:
        stored = read_yaml_mapping(path / runs.CONFIG)
    except SeqclfError:
        return False
    expected = cfg.to_dict()
    if stored != expected:
        from seqclf.compare import flatten

        old, new = flatten(stored), flatten(expected)
        key = next(k for k in [*new, *old] if old.get(k) != new.get(k))
        raise SeqclfError(f"{path}: was trained with another config ({key}: {show(old.get(key))}"
                          f", now {show(new.get(key))}). Remove it to train it again, or use "
                          "another --output-dir.")
    return True


def dry_run(plan: Plan, output_dir: str | Path = "runs") -> str:
    """The resolved variants, their settings and seeds, and what is already done."""
    exp_dir = plan.directory(output_dir)
    width = max(len(v.name) for v in plan.variants)
    lines, done = [], 0
    for v in plan.variants:
        finished = sum(is_complete(run_dir(exp_dir, v.name, s), with_seed(v.config, s))
                       for s in v.seeds)
        done += finished
        seeds = ", ".join(map(str, v.seeds))
        lines.append(f"  {v.name:<{width}}  {_settings_text(v.settings)}; "
                     f"seed{'s' if len(v.seeds) > 1 else ''} {seeds}"
                     + (f"; {finished}/{len(v.seeds)} done" if finished else ""))
    total = len(plan.runs())
    head = (f"experiment {plan.name}: {len(plan.variants)} variants, {total} runs "
            f"({done} done, {total - done} to train) in {exp_dir}")
    return "\n".join([head, *lines])


@dataclass
class SweepResult:
    """What ``run()`` did: the experiment directory, its comparison and a summary line."""

    directory: Path
    comparison: Any  # seqclf.compare.Comparison
    summary: str


def prepare_directory(plan: Plan, output_dir: str | Path) -> Path:
    """Create the experiment directory (kept across re-runs) and record the file in it."""
    exp_dir = plan.directory(output_dir)
    try:
        exp_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeqclfError(f"{exp_dir}: cannot create the experiment directory "
                          f"({exc.strerror}). Choose another with --output-dir.") from None
    record = plan.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    record.update(name=plan.name, base=str((plan.path.parent / plan.spec.base).resolve()))
    runs.write_text(exp_dir / SPEC_FILE, yaml.safe_dump(record, sort_keys=False))
    return exp_dir


def run(plan: Plan, output_dir: str | Path = "runs", jobs: int = 1,
        announce: Announce = None) -> SweepResult:
    """Train every run of the experiment that is not complete yet, then compare them all.

    Complete runs of the same config are skipped; an unfinished run directory (an
    ``INCOMPLETE`` marker, or no manifest) is removed and trained again. The comparison
    (``compare.md``, ``.csv``, ``.json``, ``compare.png``) is written into the experiment
    directory. A ``search:`` experiment runs Optuna trials instead (``seqclf.sweep``
    chooses).

    Args:
        plan: From ``load_experiment``.
        output_dir: Parent of the experiment directory ``<output_dir>/<name>/``.
        jobs: Worker processes training runs side by side.
        announce: Called with one line per run (trained or skipped), for the CLI.
    """
    from seqclf import compare

    say = announce or (lambda line: None)
    exp_dir = plan.directory(output_dir)
    all_runs = plan.runs()
    todo = []
    for i, (v, seed) in enumerate(all_runs, 1):
        cfg = with_seed(v.config, seed)
        if is_complete(run_dir(exp_dir, v.name, seed), cfg):
            say(f"[{i}/{len(all_runs)}] {v.name} seed {seed}: complete, skipped")
        else:
            todo.append((i, v.name, seed, cfg))
    prepare_directory(plan, output_dir)
    for _, name, seed, _ in todo:
        if run_dir(exp_dir, name, seed).exists():
            shutil.rmtree(run_dir(exp_dir, name, seed))

    def report(i: int, name: str, seed: int, result: Any) -> None:
        ev = result.evaluation
        say(f"[{i}/{len(all_runs)}] {name} seed {seed}: test accuracy {ev.accuracy:.4f}, "
            f"macro-F1 {ev.macro_f1:.4f} ({result.seconds:.1f} s)")

    if jobs == 1 or len(todo) < 2:
        for i, name, seed, cfg in todo:
            report(i, name, seed, train_one(cfg, exp_dir / name, seed))
    else:
        tasks = [(train_one, (cfg, exp_dir / name, seed), (i, name, seed))
                 for i, name, seed, cfg in todo]
        for tag, result in in_processes(tasks, jobs):
            report(*tag, result)
    comparison = compare.collect([exp_dir])
    compare.write_report(exp_dir, comparison)
    return SweepResult(exp_dir, comparison, f"{len(todo)} runs trained, "
                       f"{len(all_runs) - len(todo)} already complete (skipped)")


def in_processes(tasks: list[tuple[Callable, tuple, Any]], jobs: int) -> Iterator[tuple[Any, Any]]:
    """Run ``(function, args, tag)`` tasks in ``jobs`` fresh worker processes, yielding
    ``(tag, result)`` as each finishes. An error or Ctrl-C stops the workers at once
    (their unfinished run directories stay marked INCOMPLETE)."""
    pool = get_context("spawn").Pool(min(jobs, len(tasks)), initializer=_ignore_sigint)
    try:
        yield from pool.imap_unordered(_call, tasks)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _call(task: tuple[Callable, tuple, Any]) -> tuple[Any, Any]:
    function, args, tag = task
    return tag, function(*args)


def train_one(cfg: Config, parent: Path, seed: int) -> Any:
    """Train one run into ``parent/seed-<seed>`` (top level, so worker processes can call it)."""
    from seqclf.train import train

    return train(cfg, parent, run_name=f"seed-{seed}")
