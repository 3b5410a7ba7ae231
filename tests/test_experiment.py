"""Experiment files (seqclf sweep): expansion, dry run, bad files, running and resuming."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import ROOT, write_config
from seqclf.cli import app
from seqclf.config import load_config
from seqclf.errors import SeqclfError
from seqclf.experiment import in_processes, load_experiment, run

EXPERIMENTS = sorted((ROOT / "configs" / "experiments").glob("*.yaml"))
QUICKSTART = str(ROOT / "configs" / "quickstart.yaml")
TINY = {"model.units": 4, "training.epochs": 1, "training.batch_size": 256,
        "training.tensorboard": False}


def experiment(tmp_path: Path, name: str = "exp", **spec) -> Path:
    return write_config(tmp_path / f"{name}.yaml", {"base": QUICKSTART, **spec})


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# --- shipped experiments ---------------------------------------------------------------


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_shipped_experiment_loads_and_expands(path):
    plan = load_experiment(path)
    assert plan.name == path.stem and plan.variants
    for variant in plan.variants:
        assert variant.config.name == variant.name


def test_shipped_experiments():
    assert {p.stem for p in EXPERIMENTS} >= {"digits_grid", "reuters_blog"}
    grid = load_experiment(ROOT / "configs" / "experiments" / "digits_grid.yaml")
    assert len(grid.runs()) >= 8
    for variant in grid.variants:
        assert Path(variant.config.data.train).is_file()


def test_reuters_blog_variants_are_the_blog_configs():
    plan = load_experiment(ROOT / "configs" / "experiments" / "reuters_blog.yaml")
    assert [v.name for v in plan.variants] == ["rnn", "lstm", "stacked_lstm"]
    for variant in plan.variants:
        blog = load_config(ROOT / "configs" / "reuters" / f"blog_{variant.name}.yaml")
        assert {**variant.config.to_dict(), "name": None} == {**blog.to_dict(), "name": None}
        assert variant.seeds == [0, 1, 2, 3, 4]


# --- expansion -------------------------------------------------------------------------


def test_grid_times_variants_times_seeds(tmp_path):
    path = experiment(tmp_path, set={"training.epochs": 3},
                      grid={"model.cell": ["lstm", "gru"], "model.units": [4, [8, 4]]},
                      variants=[{"name": "deep", "set": {"model.head_units": [8]}},
                                {"name": "fast", "set": {"optimizer.learning_rate": 0.01}}],
                      seeds=[0, 1, 2])
    plan = load_experiment(path)
    assert len(plan.variants) == 2 * 2 * 2 and len(plan.runs()) == 24
    names = [v.name for v in plan.variants]
    assert names[:4] == ["deep_cell-lstm_units-4", "deep_cell-lstm_units-8x4",
                         "deep_cell-gru_units-4", "deep_cell-gru_units-8x4"]
    fast = plan.variants[7]
    assert fast.name == "fast_cell-gru_units-8x4"
    assert fast.settings == {"optimizer.learning_rate": 0.01, "model.cell": "gru",
                             "model.units": [8, 4]}
    cfg = fast.config
    assert (cfg.model.cell, cfg.model.layer_units(), cfg.optimizer.learning_rate,
            cfg.training.epochs, cfg.model.head_units) == ("gru", [8, 4], 0.01, 3, [])
    assert plan.variants[0].config.model.head_units == [8]
    assert all(v.seeds == [0, 1, 2] for v in plan.variants)


def test_seeds_default_to_the_configs_seed_and_repeats(tmp_path):
    plan = load_experiment(experiment(tmp_path, set={"training.seed": 5, "training.repeats": 2}))
    assert [v.name for v in plan.variants] == ["base"]
    assert plan.runs() == [(plan.variants[0], 5), (plan.variants[0], 6)]


def test_data_paths_set_in_an_experiment_are_relative_to_it(tmp_path):
    plan = load_experiment(experiment(tmp_path, set={"data.test": "test.csv"}))
    assert plan.variants[0].config.data.test == str(tmp_path / "test.csv")


def test_dry_run_prints_the_variants_and_writes_nothing(tmp_path):
    path = experiment(tmp_path, grid={"model.cell": ["lstm", "gru"], "model.units": [4, 8]},
                      seeds=[0, 1])
    result = invoke("sweep", path, "--dry-run", "--output-dir", tmp_path / "out")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (f"experiment exp: 4 variants, 8 runs (0 done, 8 to train) in "
                        f"{tmp_path / 'out' / 'exp'}")
    assert lines[1].split() == ["cell-lstm_units-4", "model.cell=lstm", "model.units=4;",
                                "seeds", "0,", "1"]
    assert len(lines) == 5
    assert not (tmp_path / "out").exists()


# --- bad experiment files: one line, before any training -------------------------------


BAD = {
    "unknown key in grid": (
        {"grid": {"model.unitz": [4, 8]}},
        "{path}: model.unitz is not a valid key for model.family 'recurrent' (did you mean "
        "'units'?). Valid keys under model for that family:"),
    "empty grid": (
        {"grid": {}},
        "{path}: grid must be a mapping of config keys to lists of values. Got {{}} instead."),
    "grid key without values": (
        {"grid": {"model.units": []}},
        "{path}: grid.model.units must be a non-empty list of distinct values. Got [] instead."),
    "grid value not a list": (
        {"grid": {"model.units": 4}},
        "{path}: grid.model.units must be a list. Got 4 instead."),
    "grid value of the wrong type": (
        {"grid": {"model.units": [4, "big"]}},
        "{path}: model.units must be an integer >= 1 or a non-empty list of them. Got 'big' "
        "instead."),
    "repeated variant name": (
        {"variants": [{"name": "a"}, {"name": "a", "set": {"model.units": 8}}]},
        "{path}: variants[1].name must be unique among the variants. Got 'a' instead."),
    "variant sets a key the grid varies": (
        {"grid": {"model.units": [4, 8]}, "variants": [{"name": "a", "set": {"model.units": 2}}]},
        "{path}: variants[0] (a) sets model.units, which the grid also varies (model.units). "
        "Set it in one place."),
    "variants with the same config": (
        {"variants": [{"name": "a", "set": {"model.units": 64}}, {"name": "b"}]},
        "{path}: variants 'a' and 'b' give the same config. Drop one or make them differ."),
    "unknown top-level key": (
        {"grd": {"model.units": [4]}},
        "{path}: grd is not a valid key (did you mean 'grid'?). Valid keys under the top level: "
        "base, grid, name, search, seeds, set, variants."),
    "unknown variant key": (
        {"variants": [{"name": "a", "sett": {}}]},
        "{path}: variants[0].sett is not a valid key (did you mean 'set'?). Valid keys under "
        "variants[0]: name, set."),
    "variant name that is no directory name": (
        {"variants": [{"name": "a/b"}]},
        "{path}: variants[0].name must be a name of letters, digits and . _ + = - (it names a "
        "directory). Got 'a/b' instead."),
    "seeds and training.seed": (
        {"seeds": [0, 1], "grid": {"training.seed": [1, 2]}},
        "{path}: training.seed cannot be set when seeds is given"),
    "repeated seeds": (
        {"seeds": [1, 1]},
        "{path}: seeds must be a non-empty list of distinct integers >= 0. Got [1, 1] instead."),
    "search and grid": (
        {"grid": {"model.units": [4]}, "search": {"n_trials": 2, "space": {
            "model.units": {"int": [2, 4]}}}},
        "{path}: search cannot be combined with grid or variants"),
    "unknown key in search space": (
        {"search": {"n_trials": 2, "space": {"model.unitz": {"int": [2, 4]}}}},
        "{path}: model.unitz is not a valid key for model.family 'recurrent' (did you mean "
        "'units'?)"),
    "search range of the wrong type": (
        {"search": {"n_trials": 2, "space": {"model.cell": {"int": [2, 4]}}}},
        "{path}: model.cell must be one of: 'lstm', 'gru', 'rnn'. Got 2 instead."),
    "search dimension of two kinds": (
        {"search": {"n_trials": 2, "space": {"model.units": {"int": [2, 4], "choice": [8]}}}},
        "{path}: search.space.model.units must be exactly one of int: [low, high], float: "
        "[low, high] or choice: [values]."),
    "unknown search dimension key": (
        {"search": {"n_trials": 2, "space": {"model.units": {"int": [2, 4], "lg": True}}}},
        "{path}: search.space.model.units.lg is not a valid key (did you mean 'log'?). Valid "
        "keys under search.space.model.units: choice, float, int, log."),
    "bad range": (
        {"search": {"n_trials": 2, "space": {"model.units": {"int": [8, 4]}}}},
        "{path}: search.space.model.units.int must be [low, high] with low <= high. Got [8, 4] "
        "instead."),
    "no trials": (
        {"search": {"n_trials": 0, "space": {"model.units": {"int": [2, 4]}}}},
        "{path}: search.n_trials must be >= 1. Got 0 instead."),
}


@pytest.mark.parametrize("spec, message", BAD.values(), ids=BAD.keys())
def test_bad_experiment_is_one_line_naming_file_and_key(tmp_path, spec, message):
    path = experiment(tmp_path, **spec)
    with pytest.raises(SeqclfError) as info:
        load_experiment(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(message.format(path=path)), text


def test_base_is_required_and_must_exist(tmp_path):
    path = write_config(tmp_path / "e.yaml", {"grid": {"model.units": [4]}})
    with pytest.raises(SeqclfError, match=r"e\.yaml: base must be given\. Got nothing instead"):
        load_experiment(path)
    path = write_config(tmp_path / "e.yaml", {"base": "nope.yaml"})
    with pytest.raises(SeqclfError, match=r"nope\.yaml: file not found"):
        load_experiment(path)


def test_bad_experiment_fails_before_importing_tensorflow(tmp_path):
    path = experiment(tmp_path, grid={"model.unitz": [4, 8]})
    probe = ("import sys\nfrom seqclf import cli\nsys.argv = ['seqclf', 'sweep', sys.argv[1]]\n"
             "try:\n    cli.main()\nexcept SystemExit as exc:\n"
             "    print('RESULT', exc.code, 'tensorflow' in sys.modules, file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k != "SEQCLF_DEBUG"}
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == "RESULT 2 False", done.stderr
    assert len(lines) == 2 and lines[0].startswith(f"error: {path}: model.unitz is not a valid")


# --- running and resuming --------------------------------------------------------------


@pytest.mark.slow
def test_sweep_runs_every_variant_and_resumes_only_what_is_missing(tmp_path):
    path = experiment(tmp_path, set=TINY, grid={"model.cell": ["lstm", "gru"]})
    out = tmp_path / "runs"
    result = run(load_experiment(path), out)
    exp_dir = out / "exp"
    lstm, gru = exp_dir / "cell-lstm" / "seed-0", exp_dir / "cell-gru" / "seed-0"
    for run_dir in (lstm, gru):
        assert (run_dir / "manifest.json").is_file() and not (run_dir / "INCOMPLETE").exists()
    for name in ("compare.md", "compare.csv", "compare.json", "compare.png", "experiment.yaml"):
        assert (exp_dir / name).is_file(), name
    assert [r.name for r in result.comparison.rows] in (["cell-lstm", "cell-gru"],
                                                         ["cell-gru", "cell-lstm"])
    assert result.comparison.keys == ["model.cell"]

    # A sweep killed during the gru run leaves it marked INCOMPLETE (and with no manifest).
    (gru / "manifest.json").unlink()
    (gru / "INCOMPLETE").write_text("killed\n")
    lstm_stamp = (lstm / "manifest.json").stat().st_mtime_ns
    lines: list[str] = []
    again = run(load_experiment(path), out, announce=lines.append)
    assert lines[0] == "[1/2] cell-lstm seed 0: complete, skipped"
    assert lines[1].startswith("[2/2] cell-gru seed 0: test accuracy ")
    assert again.summary == "1 runs trained, 1 already complete (skipped)"
    assert (lstm / "manifest.json").stat().st_mtime_ns == lstm_stamp
    assert (gru / "manifest.json").is_file() and not (gru / "INCOMPLETE").exists()

    # Everything complete: nothing is trained; the dry run says so.
    lines.clear()
    run(load_experiment(path), out, announce=lines.append)
    assert all(line.endswith("complete, skipped") for line in lines) and len(lines) == 2
    dry = invoke("sweep", path, "--dry-run", "--output-dir", out)
    assert "2 runs (2 done, 0 to train)" in dry.stdout

    # A changed experiment must not silently reuse runs of the old config.
    path = experiment(tmp_path, set={**TINY, "training.epochs": 2},
                      grid={"model.cell": ["lstm", "gru"]})
    with pytest.raises(SeqclfError, match=r"cell-lstm/seed-0: was trained with another config "
                                          r"\(training\.epochs: 1, now 2\)"):
        run(load_experiment(path), out)


@pytest.mark.slow
def test_sweep_command_prints_runs_table_and_directory(tmp_path):
    path = experiment(tmp_path, name="one", set=TINY)
    result = invoke("sweep", path, "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0].startswith("[1/1] base seed 0: test accuracy ")
    assert out[1].split()[:3] == ["variant", "test", "accuracy"]
    assert out[2].startswith("*  base ")
    assert out[-1] == f"experiment directory: {tmp_path / 'one'}"


def test_sweep_command_bad_file_is_a_one_line_error(tmp_path):
    path = experiment(tmp_path, grid={})
    result = invoke("sweep", path)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: grid must be a mapping of config keys to lists of values. Got {{}} "
        "instead."]


@pytest.mark.slow
def test_in_processes_runs_tasks_in_workers_and_passes_errors_on():
    results = dict(in_processes([(pow, (2, 3), "a"), (pow, (3, 2), "b")], jobs=2))
    assert results == {"a": 8, "b": 9}
    with pytest.raises(ValueError):
        list(in_processes([(int, ("x",), "bad"), (int, ("1",), "ok")], jobs=2))
