"""The ``seqclf`` command line. Each command parses, calls one library function, prints.

Library modules are imported inside the commands so that ``seqclf --help`` and shell
completion never pay for TensorFlow (or pandas) start-up.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from seqclf.errors import SeqclfError

DEBUG_ENV = "SEQCLF_DEBUG"


class _OneLineUsageErrors(typer.core.TyperGroup):
    """Command-line usage errors (a missing or unknown option, a bad number) end like every
    other user error: one line on stderr, ``error: ...``, exit code 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            typer.echo("error: aborted.", err=True)
            raise SystemExit(1) from None
        except Exception as exc:  # Click's usage errors (vendored by newer Typer versions)
            if not (callable(getattr(exc, "format_message", None))
                    and isinstance(getattr(exc, "exit_code", None), int)):
                raise
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help
                ctx = getattr(exc, "ctx", None)
                where = ctx.command_path if ctx is not None else "seqclf"
                message = " ".join(exc.format_message().split()).rstrip(".") + "."
                typer.echo(f"error: {where}: {message} See '{where} --help'.", err=True)
            raise SystemExit(exc.exit_code) from None
        raise SystemExit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="seqclf",
    cls=_OneLineUsageErrors,
    help="Sequence classification from CSV with Keras: MiniROCKET, InceptionTime, LSTM-FCN, "
         "recurrent stacks and ensembles of them; `seqclf init` picks one from the data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Write public datasets as CSV in seqclf's layouts; convert data to "
                            "Parquet.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors into one line on stderr and an exit code; tracebacks only with SEQCLF_DEBUG=1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if os.environ.get(DEBUG_ENV):
            return command(*args, **kwargs)
        try:
            return command(*args, **kwargs)
        except SeqclfError as exc:
            raise _fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise _fail("interrupted. An unfinished run directory stays marked INCOMPLETE.",
                        130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # a bug, not a user error: say so, keep it to one line
            detail = " ".join(str(exc).split())  # one line, however long the original
            detail = detail if len(detail) <= 200 else detail[:197] + "..."
            raise _fail(f"internal error: {type(exc).__name__}: {detail}. Set {DEBUG_ENV}=1 "
                        "for the traceback and report it.", 1) from None

    return wrapper


ConfigArg = Annotated[Path, typer.Argument(help="YAML config file.", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a config key, e.g. --set model.units=64 (repeatable; value parsed as YAML).")]
RunArg = Annotated[Path, typer.Argument(help="A run directory written by `seqclf train`.",
                                        show_default=False)]


def _warn(messages: list[str]) -> None:
    for message in messages:
        typer.echo(f"warning: {message}", err=True)


@app.command()
@handle_errors
def init(
    train: Annotated[Path, typer.Argument(
        help="Training CSV, wide or long layout.", show_default=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Config file to write (-: standard output; data paths are "
        "then absolute).", show_default=False)],
    test: Annotated[Optional[Path], typer.Option(
        help="Test CSV in the same layout (default: data.test_split of TRAIN is held out).",
        show_default=False)] = None,
    format_: Annotated[Optional[str], typer.Option(
        "--format", help="wide or long (default: guessed).", show_default=False)] = None,
    label_column: Annotated[Optional[str], typer.Option(
        help="Column of the labels (default: guessed from names like label, class, target).",
        show_default=False)] = None,
    id_column: Annotated[Optional[str], typer.Option(
        help="Column of the sequence ids (default: guessed from names like id, series).",
        show_default=False)] = None,
    step_column: Annotated[Optional[str], typer.Option(
        help="Column of the steps, long layout (default: guessed from names like step, t, "
             "time).", show_default=False)] = None,
    tokens: Annotated[bool, typer.Option(
        "--tokens", help="The one value column holds integer tokens (words, event codes; 0 "
        "is padding): recommend an embedding and a recurrent network.")] = False,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="A data key to read the data with and write into the config, e.g. "
        "--set data.missing_values=ffill (repeatable).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT if it exists.")] = False,
) -> None:
    """Write a config for TRAIN, with a model chosen from the data.

    Guesses the layout (long: id and step columns, one label per id; else wide, one row
    per sequence) and the label, id and step columns, reads the data as `seqclf train`
    will, and writes OUTPUT: what was found as comments, the data section, and the model
    family and sizes seqclf recommends for that data, with the reasons. Then run
    `seqclf train OUTPUT`. No TensorFlow is loaded.
    """
    import shlex

    from seqclf.config import parse_override
    from seqclf.init import init as init_config
    from seqclf.outputs import describe, is_stdout

    data = {}
    for item in set_ or []:
        key, value = parse_override(item)
        if not key.startswith("data.") or key.count(".") != 1:
            raise SeqclfError(f"--set {item}: seqclf init takes data keys only (e.g. "
                              "data.missing_values=ffill); set model and training keys in "
                              "the config it writes.")
        data[key.removeprefix("data.")] = value
    result = init_config(train, test, output=output, force=force, label_column=label_column,
                         id_column=id_column, step_column=step_column, format=format_,
                         tokens=tokens, data=data)
    say = functools.partial(typer.echo, err=is_stdout(output))  # stdout holds the config
    for line in result.summary:
        say(f"found: {line}")
    say(f"wrote {describe(result.output)}")
    say(f"model: {result.family}")
    for reason in result.recommendation.reasons:
        say(f"  - {reason}")
    saved = "CONFIG" if is_stdout(output) else shlex.quote(str(result.output))
    say(f"next: seqclf train {saved}")


@app.command()
@handle_errors
def train(
    config: Annotated[Optional[Path], typer.Argument(
        help="YAML config file (omit with --resume).", show_default=False)] = None,
    set_: SetOpt = None,
    output_dir: Annotated[Path, typer.Option(help="Where run directories are created.")] = Path("runs"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    repeat: Annotated[Optional[int], typer.Option(
        help="Train N runs with seeds seed..seed+N-1 and report accuracy mean ± std, min, "
             "max (same as --set training.repeats=N).", show_default=False)] = None,
    resume: Annotated[Optional[Path], typer.Option(
        help="Continue an interrupted run directory from its last finished epoch.",
        show_default=False)] = None,
) -> None:
    """Train a model from CONFIG and save it with its metrics and plots.

    Shows a live progress bar on a terminal (one line per epoch when piped), then the
    test accuracy beside the majority-class baseline, and the run directory written
    (runs/<config name>-<timestamp>/ by default; never overwritten). With repeats, each
    seed's run is saved under one group directory with a summary.

    Interrupted (Ctrl-C, SIGTERM, a crash)? The run directory stays marked INCOMPLETE
    with a checkpoint of the last finished epoch: `seqclf train --resume RUN_DIR`.
    """
    with _sigterm_as_interrupt():
        _train(config, set_, output_dir, quiet, repeat, resume)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (kill, job schedulers) gets the same clean exit as Ctrl-C."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _train(config: Path | None, set_: list[str] | None, output_dir: Path, quiet: bool,
           repeat: int | None, resume: Path | None) -> None:
    from seqclf.config import load_config
    from seqclf.progress import Progress
    from seqclf.train import resume as resume_run, train as train_model

    progress = None if quiet else Progress()
    if (config is None) == (resume is None):
        raise SeqclfError("seqclf train: give either CONFIG or --resume RUN_DIR (not both).")
    if resume is not None:
        if set_ or repeat is not None:
            raise SeqclfError("seqclf train --resume: the run's own config is used; --set and "
                              "--repeat cannot change it.")
        result = resume_run(resume, progress)
    else:
        overrides = list(set_ or []) + ([f"training.repeats={repeat}"] if repeat is not None else [])
        cfg = load_config(config, overrides)
        if not quiet:
            typer.echo(f"training {cfg.name}: {_describe(cfg)}")
        if cfg.training.repeats > 1:
            return _train_repeats(cfg, output_dir, progress, quiet)
        result = train_model(cfg, output_dir, progress=progress)
    _warn(result.warnings)
    _print_scores(result.evaluation)
    # A multi-worker run's other workers train in a scratch directory deleted at the end.
    typer.echo(f"run directory: {result.run_dir}" if result.run_dir.exists()
               else "run directory: none on this worker (the chief writes the run)")


def _train_repeats(cfg: Any, output_dir: Path, progress: Any, quiet: bool) -> None:
    from seqclf.repeats import train_repeats

    def announce(i: int, n: int, seed: int) -> None:
        if not quiet:
            typer.echo(f"repeat {i + 1}/{n}: seed {seed}")

    group = train_repeats(cfg, output_dir, progress, announce)
    _warn(group.results[0].warnings)
    for result in group.results:
        typer.echo(f"seed {result.run_dir.name.removeprefix('seed-')}: ", nl=False)
        _print_scores(result.evaluation)
    acc = group.summary["accuracy"]
    typer.echo(f"test accuracy over {len(group.results)} seeds: {acc['mean']:.4f} ± "
               f"{acc['std']:.4f} (min {acc['min']:.4f}, max {acc['max']:.4f}); "
               f"majority-class baseline {group.summary['baseline']:.4f}")
    typer.echo(f"run directory: {group.group_dir}")


def _print_scores(ev: Any) -> None:
    typer.echo(f"test accuracy {ev.accuracy:.4f} ({ev.correct}/{ev.n}); majority-class "
               f"baseline {ev.baseline:.4f}; macro-F1 {ev.macro_f1:.4f}")


def _describe(cfg: Any) -> str:
    from seqclf.models import registry

    describe = registry.hook(cfg.model.family, "describe")
    stack = describe(cfg.model) if describe else cfg.model.family
    if registry.hook(cfg.model.family, "fit") is not None:
        return stack  # fitted in closed form: no epochs, no optimizer
    epochs = cfg.training.epochs
    return (f"{stack}, {epochs} epoch{'s' if epochs != 1 else ''}, batch {cfg.training.batch_size}, "
            f"{cfg.optimizer.name} lr {cfg.optimizer.learning_rate:g}")


@app.command()
@handle_errors
def evaluate(
    run_dir: RunArg,
    data: Annotated[Optional[Path], typer.Option(
        help="CSV to score, in the training layout (default: the run's test data).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score a saved run: accuracy, macro-F1, majority baseline, per-class report, confusion matrix."""
    from seqclf.evaluate import evaluate as evaluate_run
    from seqclf.report import evaluation_text

    ev = evaluate_run(run_dir, data)
    _warn(ev.warnings())
    if as_json:
        typer.echo(json.dumps(ev.to_dict(), default=str))
    else:
        typer.echo(evaluation_text(ev), nl=False)


@app.command()
@handle_errors
def predict(
    run_dir: RunArg,
    data: Annotated[Path, typer.Option(help="CSV of sequences (labels not needed).",
                                       show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        help="CSV file to write (default, or -: standard output), or Parquet for a name ending "
             "in .parquet; written as the predictions come. A FIFO, a device or "
             "/dev/stdout is written in place; a symlink is written through.")] = None,
    threshold: Annotated[Optional[float], typer.Option(
        help="Two classes: predict the second where its probability is at least this "
             "(default: the run's training.threshold).", show_default=False)] = None,
) -> None:
    """Predict each sequence of a CSV: its id, the predicted label, and each class probability."""
    from seqclf.evaluate import predict_to
    from seqclf.outputs import STDOUT, describe

    n, truncated = predict_to(run_dir, data, STDOUT if output is None else output, threshold)
    if truncated:
        _warn([f"{data}: {truncated} sequences were longer than the training padding length "
               "and were truncated."])
    if output is not None:
        typer.echo(f"wrote {n} predictions to {describe(output)}", err=True)


@app.command()
@handle_errors
def export(
    run_dir: RunArg,
    output: Annotated[Path, typer.Option(
        help="Export directory to create (never overwritten).", show_default=False)],
    format_: Annotated[str, typer.Option("--format", help="onnx or savedmodel.")] = "onnx",
    data: Annotated[Optional[Path], typer.Option(
        help="CSV to check the export on (default: the run's test data).")] = None,
) -> None:
    """Export a run for inference without seqclf: ONNX (model.onnx) or a TensorFlow
    SavedModel (saved_model/), with preprocessing.json beside it (label list, padding,
    scaling, pad value, and how to apply them).

    Right after writing it, the exported model and the Keras model run on the test data:
    the predicted labels must be identical and the probabilities within 1e-4, or nothing
    is written. ONNX needs the onnx, onnxruntime and tf2onnx packages (the export extra).
    """
    from seqclf.export import export as export_run

    result = export_run(run_dir, format_, output, data)
    typer.echo(f"parity on {result.source} ({result.n} sequences): predicted labels "
               f"identical; max abs probability difference {result.max_abs_diff:.2e}")
    typer.echo(f"export directory: {result.path}")


@app.command()
@handle_errors
def explain(
    run_dir: RunArg,
    data: Annotated[Path, typer.Option(help="Data file in the run's layout (labels optional: "
                                            "without them permutation importance measures "
                                            "agreement with the model's own labels).",
                                       show_default=False)],
    ids: Annotated[Optional[list[str]], typer.Option(
        "--ids", help="A sequence to attribute step by step (repeatable; default: the first "
                      "4).", show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option(
        help="Directory to write into (default: RUN_DIR/explain).", show_default=False)] = None,
    repeats: Annotated[int, typer.Option(help="Shuffles per channel (permutation "
                                              "importance).")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the shuffles and baselines.")] = 0,
) -> None:
    """Which steps and channels drove the predictions: integrated gradients per step and
    channel for the predicted class (occlusion for minirocket), permutation importance
    per channel; explanation.json, attributions.csv, permutation_importance.csv and two
    plots."""
    from seqclf.explain import explain as explain_run

    result = explain_run(run_dir, data, ids, output, repeats=repeats, seed=seed)
    ranking = ", ".join(f"{r['channel']} {r['accuracy_drop']:+.3f}" for r in result.importance)
    typer.echo(f"attributions ({result.method.replace('_', ' ')}) for "
               f"{', '.join(result.ids)}; accuracy drop per shuffled channel: {ranking}")
    typer.echo(f"wrote {len(result.files)} files to {result.path}")


@app.command()
@handle_errors
def serve(
    run_dir: Annotated[Path, typer.Argument(
        help="A run directory; with --engine onnx, a directory written by `seqclf export "
             "--format onnx`.", show_default=False)],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(
        min=1, help="Server processes, each loading the model once.")] = 1,
    engine: Annotated[str, typer.Option(
        help="keras (the run's model) or onnx (its ONNX export, under onnxruntime).")] = "keras",
    run: Annotated[Optional[Path], typer.Option(
        help="With --engine onnx: the run the export was made from (default: the one its "
             "preprocessing.json names).", show_default=False)] = None,
    max_batch: Annotated[int, typer.Option(
        min=1, help="Most sequences the model runs at once.")] = 256,
    batch_wait_ms: Annotated[float, typer.Option(
        min=0, max=1000, help="Longest a request waits for others to share its batch.")] = 2.0,
    max_body_mb: Annotated[float, typer.Option(
        min=0.001, help="Largest request body accepted, in MiB.")] = 16.0,
    max_steps: Annotated[Optional[int], typer.Option(
        min=1, help="Most steps in one sequence (default: 10 x the run's max_length).",
        show_default=False)] = None,
) -> None:
    """Serve a run over HTTP: POST /predict (JSON), POST /predict/csv (a CSV as `seqclf
    predict` reads it), GET /health, GET /metadata; OpenAPI docs at /docs.

    The run's model is loaded once and its own preprocessing applied. Concurrent requests
    are batched for the model. Bad input gets a 4xx with one line naming the sequence and
    step. Needs the serve extra (fastapi, uvicorn).
    """
    from seqclf.serving.server import serve as serve_run
    from seqclf.serving.settings import MIB, Settings

    serve_run(Settings(
        target=str(run_dir), engine=engine, run=None if run is None else str(run), host=host,
        port=port, workers=workers, max_batch=max_batch, batch_wait_ms=batch_wait_ms,
        max_body_bytes=int(max_body_mb * MIB), max_steps=max_steps),
        announce=lambda line: typer.echo(line, err=True))


@app.command()
@handle_errors
def check(
    config: ConfigArg,
    set_: SetOpt = None,
    config_only: Annotated[bool, typer.Option(
        "--config-only", help="Only validate the config and print it resolved: no data "
        "reading, no TensorFlow (instant).")] = False,
) -> None:
    """Validate CONFIG and read its data without training.

    Prints the resolved config (every default filled in), a summary of each data split
    (sequences, length min/median/max, channels, class counts, missing values), the
    model summary with its parameter count, and whether the cuDNN kernel will be used.
    """
    from seqclf.config import load_config

    cfg = load_config(config, set_ or [])
    typer.echo("# resolved config")
    typer.echo(cfg.to_yaml())
    if config_only:
        return
    from seqclf.train import check as check_config

    result = check_config(cfg)
    for name, summary in result.data.items():
        length = summary["length"]
        typer.echo(f"# {name} data: {summary['source']}")
        typer.echo(f"sequences: {summary['sequences']}; length min {length['min']}, median "
                   f"{length['median']:g}, max {length['max']}; channels: {summary['channels']} "
                   f"({', '.join(summary['features'])}); missing values: {summary['missing_values']}")
        if summary["classes"]:
            counts = ", ".join(f"{k}: {v}" for k, v in summary["classes"].items())
            typer.echo(f"classes ({len(summary['classes'])}): {counts}")
    typer.echo("# model")
    typer.echo(result.model_summary)
    typer.echo(f"parameters: {result.parameters}")
    typer.echo(result.compute)
    typer.echo(result.cudnn)


@app.command()
@handle_errors
def info() -> None:
    """Show versions of Python, TensorFlow and Keras, the Keras backend and the devices found."""
    from seqclf.backend import environment

    env = environment()
    for name, version in env["versions"].items():
        typer.echo(f"{name}: {version}")
    typer.echo(f"keras backend: {env['backend']}")
    if "cuda" in env:
        typer.echo(f"tensorflow built with CUDA {env['cuda']}, cuDNN {env['cudnn']}")
    if env["devices"]:
        for dev in env["devices"]:
            typer.echo(f"device: {dev['name']} ({dev['model']})")
    else:
        typer.echo("device: CPU only (no GPU found)")


@app.command()
@handle_errors
def sweep(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file.", show_default=False)],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the resolved variants and the run count; train nothing.")] = False,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes training side by side.")] = 1,
    output_dir: Annotated[Path, typer.Option(
        help="Parent of the experiment directory.")] = Path("runs"),
) -> None:
    """Run an experiment file: a grid or list of variants over seeds, or an Optuna search.

    Every variant is checked before anything trains. Each run is an ordinary run
    directory under <output-dir>/<experiment name>/; at the end the comparison table and
    plot are written there too (compare.md, .csv, .json, .png) and the table is printed.
    Interrupted? Run the same command again: complete runs are skipped, unfinished ones
    redone. A search (search: in the file) is shared by every `seqclf sweep` started on
    the same file and storage, on this machine or others: each pulls the next trial.
    """
    from seqclf.compare import render
    from seqclf.experiment import load_experiment
    from seqclf.sweep import describe, run

    plan = load_experiment(experiment)
    if dry_run:
        typer.echo(describe(plan, output_dir))
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)  # stop worker processes too
    result = run(plan, output_dir, jobs, announce=typer.echo)
    _warn(result.comparison.warnings())
    typer.echo(render(result.comparison), nl=False)
    typer.echo(result.summary)
    typer.echo(f"experiment directory: {result.directory}")


@app.command()
@handle_errors
def compare(
    dirs: Annotated[list[Path], typer.Argument(
        help="Run, repeat-group or experiment directories (or a folder of them).",
        show_default=False)],
    format_: Annotated[str, typer.Option(
        "--format", help="table, csv, markdown or json.")] = "table",
    plot: Annotated[Optional[Path], typer.Option(
        help="Also save a PNG plot of accuracy per variant here.", show_default=False)] = None,
) -> None:
    """Compare finished runs: one row per config, its seeds pooled.

    Shows the config keys that differ between rows, test accuracy (mean ± sample std over
    seeds), macro-F1, majority-class baseline, parameters, epochs and seconds per run.
    Sorted best first by validation accuracy when every row has one, else by test
    accuracy; the best is marked.
    """
    from seqclf.compare import compare as compare_runs

    text, comparison = compare_runs(dirs, format_, plot)
    _warn(comparison.warnings())
    typer.echo(text, nl=False)


@data_app.command("digits")
@handle_errors
def data_digits(
    output: Annotated[Path, typer.Option(help="Folder for train.csv and test.csv.")] = Path("data/digits"),
) -> None:
    """Write scikit-learn's handwritten digits (8 steps x 8 features, long layout): the bundled default data."""
    from seqclf.datasets import digits

    for name, path in digits(output).items():
        typer.echo(f"wrote {name}: {path}")


@data_app.command("reuters")
@handle_errors
def data_reuters(
    output: Annotated[Path, typer.Option(help="Folder for train.csv and test.csv.")] = Path("data/reuters"),
    num_words: Annotated[int, typer.Option(help="Keep the most frequent words; rarer ones become 2 (OOV).")] = 30000,
    maxlen: Annotated[int, typer.Option(help="Keep wires shorter than this many words.")] = 50,
    test_split: Annotated[float, typer.Option(help="Fraction of wires for the test set.")] = 0.3,
) -> None:
    """Write the Keras Reuters newswire subset (wide layout) via keras.datasets.reuters.

    The defaults are the classic tutorial's: 1395 train / 599 test wires of at most 49
    word indices, 46 topic labels. Keras downloads reuters.npz once into
    $KERAS_HOME/datasets/ (~/.keras/datasets/); offline, put the file there.
    """
    from seqclf.datasets import reuters

    for name, path in reuters(output, num_words, maxlen, test_split).items():
        typer.echo(f"wrote {name}: {path}")


@data_app.command("synthetic")
@handle_errors
def data_synthetic(
    output: Annotated[Path, typer.Option(help="Folder for train.csv and test.csv.")] = Path("data/timeseries"),
    problem: Annotated[str, typer.Option(help="shapes (a class motif at a random position) or order (two motifs; the class is their order).")] = "shapes",
    classes: Annotated[int, typer.Option(help="Number of classes.")] = 4,
    channels: Annotated[int, typer.Option(help="Channels per step (1: wide layout, more: long).")] = 1,
    min_length: Annotated[int, typer.Option(help="Shortest series, in steps.")] = 400,
    max_length: Annotated[int, typer.Option(help="Longest series, in steps.")] = 600,
    train: Annotated[int, typer.Option(help="Training series.")] = 100,
    test: Annotated[int, typer.Option(help="Test series.")] = 100,
    width: Annotated[float, typer.Option(help="Motif width, as a fraction of the series length.")] = 0.08,
    amplitude: Annotated[float, typer.Option(help="Motif peak over the noise std (the signal-to-noise ratio).")] = 3.0,
    noise: Annotated[float, typer.Option(help="Noise standard deviation.")] = 1.0,
    distractors: Annotated[int, typer.Option(help="Class-independent bumps added to every series.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same files.")] = 0,
) -> None:
    """Write a synthetic long-time-series problem (generated locally, seeded).

    Noisy drifting series with a random gain and offset each; the class is a shape at a
    random position (or the order of two shapes). The defaults write the data of
    configs/timeseries/*.yaml.
    """
    from seqclf.datasets import synthetic

    written = synthetic(output, train=train, test=test, seed=seed, problem=problem,
                        classes=classes, channels=channels, length=(min_length, max_length),
                        width=width, amplitude=amplitude, noise=noise, distractors=distractors)
    for name, path in written.items():
        typer.echo(f"wrote {name}: {path}")


@data_app.command("convert")
@handle_errors
def data_convert(
    source: Annotated[str, typer.Argument(
        help="The data: a file (.csv, .csv.gz/.bz2/.xz/.zst, .parquet, .npz) or a quoted glob "
             "of shards.", show_default=False)],
    output: Annotated[Path, typer.Option(
        help="The Parquet file to write, OUT.parquet; with --shards N: OUT-00000-of-0000N.parquet "
             "... beside it.", show_default=False)],
    format_: Annotated[str, typer.Option("--format", help="The input's layout: long or wide.")] = "long",
    to: Annotated[Optional[str], typer.Option(
        help="The output's layout: long or wide (default: the input's).")] = None,
    shards: Annotated[int, typer.Option(help="Files to write, cut at sequence boundaries.")] = 1,
    id_column: Annotated[str, typer.Option(help="The id column (data.id_column).")] = "id",
    step_column: Annotated[str, typer.Option(help="The step column (data.step_column).")] = "step",
    label_column: Annotated[str, typer.Option(help="The label column (data.label_column).")] = "label",
    missing_values: Annotated[str, typer.Option(
        help="Empty cells inside a sequence: error, zero or ffill.")] = "error",
) -> None:
    """Convert data to Parquet (long or wide layout), optionally in N shards: read and written
    chunk by chunk, so it works on data larger than memory."""
    from seqclf.config import validate_config
    from seqclf.data.convert import WHERE, convert

    if to is not None and to not in ("long", "wide"):
        raise SeqclfError(f"{WHERE}: --to must be 'long' or 'wide'. Got {to!r} instead.")
    cfg = validate_config({"data": {
        "train": source, "format": format_, "id_column": id_column, "step_column": step_column,
        "label_column": label_column, "missing_values": missing_values}}, where=WHERE)
    done = convert(source, cfg.data, output, to, shards)
    for path, n, rows in zip(done.files, done.sequences, done.rows):
        typer.echo(f"wrote {path}: {n} sequences, {rows} rows ({done.layout} layout)")


def _reflowed(doc: str) -> str:
    """``doc`` with each paragraph on one line: rich keeps a docstring's single line
    breaks, which at a terminal narrower than the source broke sentences into ragged
    lines ("then\nthe\ntest accuracy")."""
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n"))


for _command in app.registered_commands + data_app.registered_commands:
    _command.help = _command.help or _reflowed(_command.callback.__doc__ or "")


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="seqclf")
    except SystemExit as exc:
        _exit(exc.code)
    _exit(0)


def _exit(code: Any) -> None:
    """End the process with ``code`` (as ``SystemExit`` would).

    After a command that loaded a deep-learning framework, without Python's interpreter
    teardown: TensorFlow's takes about 3 s on 2 cores (module and C++ destructors, thread
    pools), after everything seqclf writes is complete and closed. Output streams and
    logging are flushed first; exit handlers still run.
    """
    if not any(name in sys.modules for name in ("tensorflow", "jax", "torch")):
        raise SystemExit(code)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    import atexit
    import logging

    atexit._run_exitfuncs()  # CPython's own: what the teardown would run first
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe, a closed stream
            stream.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    main()
