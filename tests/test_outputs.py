"""Where seqclf's files go: one matrix of output targets, the same rules for every writer.

For each target (a new file, an existing file, a symlink to a file, a dangling symlink, a
FIFO with a reader, /dev/null, a descriptor, a full device, ``-``, a directory, a
read-only folder) and each umask (0022, 0077), the tests assert what is written where,
the modes of the files that result, that a special file is the same special file
afterwards, and a one-line error where nothing can be written. ``docs/results/
reliability.md`` ("Output targets") summarises them.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import stat
import sys
import threading
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import long_frame, write_csv
from seqclf import outputs, runs
from seqclf.cli import app
from seqclf.errors import SeqclfError

DATA = b"id,label\ns1,up\n"  # what the writers write; bytes, valid UTF-8
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
FULL = "cannot write (No space left on device). Check free space and permissions."


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _save_by_name(name: str, data: bytes) -> None:
    """A writer that needs a file name, as Keras's model.save does (and writes with os.write,
    so that the tests can make the disk full)."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # open(name, "wb")
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


WRITERS = {
    "write_text": lambda path, data: outputs.write_text(path, data.decode("utf-8")),
    "write_with": lambda path, data: outputs.write_with(
        path, lambda name: _save_by_name(name, data), suffix=".keras"),
}


@pytest.fixture(params=sorted(WRITERS))
def write(request):
    """The two ways seqclf writes (bytes it holds; a writer that needs a file name)."""
    return WRITERS[request.param]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def identity(path, follow: bool = True) -> tuple[int, int, int, int]:
    st = os.stat(path) if follow else os.lstat(path)
    return st.st_mode, st.st_ino, st.st_dev, st.st_rdev


def names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


class Reader(threading.Thread):
    """Reads a FIFO to its end, as the other side of a pipe does."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.data = path, None
        self.start()

    def run(self) -> None:
        with open(self.path, "rb") as fh:
            self.data = fh.read()

    def finish(self) -> bytes:
        """The bytes read; a reader still waiting for a writer is let go (it reads none)."""
        deadline = time.monotonic() + 10
        while self.is_alive() and time.monotonic() < deadline:
            self.join(0.2)
            with contextlib.suppress(OSError):  # ENXIO: it has not opened the FIFO yet
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
        assert not self.is_alive(), "the reader never finished"
        return self.data


# --- regular files: atomic, with the mode a plain open() gives ------------------------


def test_new_file_gets_the_mode_open_would_give(tmp_path, umask, write):
    path = tmp_path / "out.csv"
    write(path, DATA)
    assert path.read_bytes() == DATA
    assert mode(path) == 0o666 & ~umask  # 0644 under 0022, 0600 under 0077
    assert names(tmp_path) == ["out.csv"]  # no temporary file left


@pytest.mark.parametrize("existing", [0o664, 0o640, 0o444])
def test_existing_file_is_replaced_keeping_its_mode(tmp_path, umask, write, existing):
    path = tmp_path / "out.csv"
    path.write_bytes(b"old contents, longer than the new ones\n" * 10)
    os.chmod(path, existing)
    before = os.stat(path).st_ino
    write(path, DATA)
    assert path.read_bytes() == DATA
    assert mode(path) == existing  # whatever the umask
    assert os.stat(path).st_ino != before  # a new file renamed onto it: atomic
    assert names(tmp_path) == ["out.csv"]


def test_symlink_to_a_file_is_written_through_and_stays_a_link(tmp_path, umask, write):
    folder = tmp_path / "shared"
    folder.mkdir()
    real = folder / "real.csv"
    real.write_bytes(b"old\n")
    os.chmod(real, 0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(Path("shared") / "real.csv")  # relative, as ln -s makes them
    link_before = identity(link, follow=False)
    write(link, DATA)
    assert identity(link, follow=False) == link_before and os.readlink(link) == "shared/real.csv"
    assert real.read_bytes() == DATA and mode(real) == 0o640
    assert names(tmp_path) == ["link.csv", "shared"] and names(folder) == ["real.csv"]


def test_dangling_symlink_creates_its_target(tmp_path, umask, write):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "target.csv")
    write(link, DATA)
    assert link.is_symlink() and os.readlink(link) == str(tmp_path / "target.csv")
    assert (tmp_path / "target.csv").read_bytes() == DATA
    assert mode(tmp_path / "target.csv") == 0o666 & ~umask
    assert names(tmp_path) == ["link.csv", "target.csv"]


def test_dangling_symlink_into_a_missing_folder_is_one_line(tmp_path, write):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "gone" / "target.csv")
    with pytest.raises(SeqclfError) as caught:
        write(link, DATA)
    assert str(caught.value) == (f"{link}: cannot write: the folder {tmp_path / 'gone'} does "
                                 "not exist. Create it first.")
    assert names(tmp_path) == ["link.csv"] and link.is_symlink()


# --- special files: written in place, never replaced ---------------------------------


def test_fifo_is_streamed_to_its_reader_and_stays_a_fifo(tmp_path, umask, write):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o600)
    before = identity(fifo)
    reader = Reader(fifo)
    write(fifo, DATA)
    assert reader.finish() == DATA
    assert identity(fifo) == before and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert mode(fifo) == 0o600
    assert names(tmp_path) == ["pipe"]


def test_dev_null_stays_the_device(umask, write):
    before = identity("/dev/null")
    assert stat.S_ISCHR(before[0])
    write("/dev/null", DATA)
    assert identity("/dev/null") == before


def test_a_descriptor_path_writes_to_that_descriptor(write):
    """/dev/fd/N (and /dev/stdout, /proc/self/fd/N): the open file itself, here a pipe."""
    r, w = os.pipe()
    try:
        before = identity(f"/dev/fd/{w}")
        write(f"/dev/fd/{w}", DATA)
        assert identity(f"/dev/fd/{w}") == before and stat.S_ISFIFO(before[0])
        os.close(w)
        w = None
        assert os.read(r, 1000) == DATA
    finally:
        os.close(r)
        if w is not None:
            os.close(w)


def test_dev_stdout_writes_to_standard_output_in_place(capfd, write):
    """pytest's capture makes descriptor 1 a regular file: it is written where the
    descriptor stands, not replaced (the same file before and after)."""
    print("before", flush=True)
    before = os.fstat(1).st_ino
    write("/dev/stdout", DATA)
    print("after", flush=True)
    assert os.fstat(1).st_ino == before
    assert capfd.readouterr().out == "before\n" + DATA.decode() + "after\n"


def test_dash_is_standard_output(tmp_path, monkeypatch, capsysbinary, write):
    monkeypatch.chdir(tmp_path)
    write("-", DATA)
    assert capsysbinary.readouterr().out == DATA
    assert names(tmp_path) == []  # no file named -


def test_dash_writes_everything_when_each_write_takes_part(monkeypatch):
    """Under ``python -u`` sys.stdout.buffer is a raw file: one write may take part."""

    class Raw(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            self.data += bytes(b[:1000])
            return min(len(b), 1000)

    raw = Raw()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, write_through=True))
    outputs.write_bytes("-", DATA * 1000)
    assert bytes(raw.data) == DATA * 1000


def test_dash_whose_reader_left_is_one_line_and_quiet_afterwards(monkeypatch):
    """`seqclf predict ... --output - | head`: head exits before the end."""
    r, w = os.pipe()
    os.close(r)
    stdout = open(w, "w", encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        with pytest.raises(SeqclfError) as caught:
            outputs.write_bytes("-", DATA * 10000)
        assert str(caught.value) == ("standard output: cannot write: its reader closed it "
                                     "before everything was written (Broken pipe).")
        stdout.write("more")
        stdout.flush()  # no second error: what is left goes to /dev/null
        assert os.path.samestat(os.fstat(w), os.stat(os.devnull))
    finally:
        stdout.close()


# --- where nothing can be written: one line, nothing damaged ------------------------


def test_full_device_is_one_line_and_stays_the_device(tmp_path, monkeypatch, write):
    """A device with no space left (/dev/full), simulated without touching /dev: a FIFO
    with a reader whose every write fails with ENOSPC."""
    fifo = tmp_path / "full"
    os.mkfifo(fifo)
    before = identity(fifo)
    real_write = os.write

    def full(fd, data):
        if os.fstat(fd).st_ino == before[1]:
            raise ENOSPC
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    reader = Reader(fifo)
    with pytest.raises(SeqclfError) as caught:
        write(fifo, DATA)
    assert str(caught.value) == f"{fifo}: {FULL}"
    assert reader.finish() == b""
    assert identity(fifo) == before and names(tmp_path) == ["full"]


def test_full_disk_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, write):
    path = tmp_path / "out.csv"
    path.write_bytes(b"old\n")
    real_write = os.write

    def full(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path)):
            raise ENOSPC
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(SeqclfError) as caught:
        write(path, DATA)
    assert str(caught.value) == f"{path}: {FULL}"
    assert path.read_bytes() == b"old\n" and names(tmp_path) == ["out.csv"]


def test_a_directory_is_refused(tmp_path, write):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(SeqclfError) as caught:
        write(tmp_path, DATA)
    assert str(caught.value) == f"{tmp_path}: is a directory. Give a file name to write."
    assert names(tmp_path) == ["keep.txt"] and (tmp_path / "keep.txt").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder: the "
                    "permission check does not apply (see the injected case below)")
def test_read_only_folder_is_one_line(tmp_path, write):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        with pytest.raises(SeqclfError) as caught:
            write(folder / "out.csv", DATA)
        assert str(caught.value) == (
            f"{folder / 'out.csv'}: cannot write: no permission to create files in the "
            f"folder {folder}. Choose another place or fix its permissions.")
        assert names(folder) == []
    finally:
        os.chmod(folder, 0o755)


def test_permission_denied_while_creating_is_one_line(tmp_path, monkeypatch, write):
    """The read-only folder as root sees it too: the system refuses the new file
    (EACCES injected where the file is created)."""
    real_open = os.open

    def denied(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and str(path).startswith(str(tmp_path)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(SeqclfError) as caught:
        write(tmp_path / "out.csv", DATA)
    assert str(caught.value) == (f"{tmp_path / 'out.csv'}: cannot write (Permission denied). "
                                 "Check free space and permissions.")
    assert names(tmp_path) == []


def test_missing_folder_and_a_fifo_whose_reader_left(tmp_path):
    with pytest.raises(SeqclfError, match=r"the folder .*/no does not exist\. Create it first"):
        outputs.write_text(tmp_path / "no" / "out.csv", "x")
    r, w = os.pipe()
    os.close(r)
    try:
        with pytest.raises(SeqclfError) as caught:
            outputs.write_text(f"/dev/fd/{w}", "x")
    finally:
        os.close(w)
    assert str(caught.value) == (f"/dev/fd/{w}: cannot write: its reader closed it before "
                                 "everything was written (Broken pipe).")


def test_staging_directory_and_make_folder(tmp_path, umask):
    """export's staging directory is made as mkdir makes one (mkdtemp's is 0700); the
    folder of `seqclf data` must be a folder."""
    staging = outputs.staging_directory(tmp_path / "export")
    assert staging.parent == tmp_path and staging.name.startswith(".export.")
    assert mode(staging) == 0o777 & ~umask
    assert outputs.make_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    (tmp_path / "file").write_text("x")
    for bad, message in ((tmp_path / "file", f"{tmp_path / 'file'}: is not a folder."),
                         ("-", "-: is standard output, not a folder.")):
        with pytest.raises(SeqclfError) as caught:
            outputs.make_folder(bad)
        assert str(caught.value).startswith(message)


# --- the same rules where seqclf writes: run directories, models, predict, init ---------


def _current_umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_every_file_of_a_run_directory_has_the_umask_mode(long_run):
    """The run was trained in this process (the session's umask): no file is private."""
    umask = _current_umask()
    files = [p for p in long_run.run_dir.rglob("*") if p.is_file()]
    assert {"model.keras", "metrics.json", "confusion_matrix.png", "manifest.json",
            "history.csv", "config.yaml"} <= {p.name for p in files}
    assert any(p.name.startswith("events.out.tfevents") for p in files)  # TensorBoard's own
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o666 & ~umask)
                                                     for p in files}
    folders = [long_run.run_dir, *[p for p in long_run.run_dir.rglob("*") if p.is_dir()]]
    assert {oct(mode(p)) for p in folders} == {oct(0o777 & ~umask)}


def test_model_keras_follows_the_same_rules(long_run, tmp_path, umask, keras):
    model = runs.open_run(long_run.run_dir).load_model()
    new = tmp_path / "new.keras"
    runs.save_model(new, model)
    assert mode(new) == 0o666 & ~umask
    link = tmp_path / "link.keras"
    link.symlink_to(new)
    os.chmod(new, 0o640)
    runs.save_model(link, model)
    assert link.is_symlink() and mode(new) == 0o640
    fifo = tmp_path / "pipe.keras"
    os.mkfifo(fifo)
    before = identity(fifo)
    reader = Reader(fifo)
    runs.save_model(fifo, model)
    data = reader.finish()
    assert identity(fifo) == before
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == zipfile.ZipFile(new).namelist()
    assert names(tmp_path) == ["link.keras", "new.keras", "pipe.keras"]


def test_run_file_writers_use_the_umask(tmp_path, umask):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs.write_json(tmp_path / "m.json", {"a": 1})
    runs.write_arrays(tmp_path / "w.npz", [np.arange(3)])
    runs.save_figure(tmp_path / "p.png", plt.figure())
    assert {p: mode(tmp_path / p) for p in names(tmp_path)} == {
        "m.json": 0o666 & ~umask, "p.png": 0o666 & ~umask, "w.npz": 0o666 & ~umask}
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert np.load(tmp_path / "w.npz")["arr_0"].tolist() == [0, 1, 2]


@pytest.mark.skipif(sys.platform != "linux", reason="figures are made in forked copies on Linux")
def test_figures_are_made_in_forked_copies_and_a_failure_surfaces_here(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import seqclf.backend

    monkeypatch.setattr(seqclf.backend, "cpu_cores", lambda: 2)
    made = tmp_path / "made"
    made.mkdir()

    def maker(name):
        def make():
            (made / f"{name}-{os.getpid()}").touch()
            return plt.figure()
        return make

    with runs.Figures() as figures:
        for n in "abc":
            figures.save(tmp_path / f"{n}.png", maker(n))
        figures.save(tmp_path / "none.png", lambda: None)  # nothing to draw: no file
        figures.finish()
    assert names(tmp_path) == ["a.png", "b.png", "c.png", "made"]
    assert all((tmp_path / f"{n}.png").read_bytes().startswith(b"\x89PNG") for n in "abc")
    pids = {n.split("-")[1] for n in names(made)}
    assert len(names(made)) == 3 and len(pids) == 3 and str(os.getpid()) not in pids

    def broken():
        raise ValueError("no figure")

    with pytest.raises(ValueError, match="no figure"), runs.Figures() as figures:
        figures.save(tmp_path / "d.png", maker("d"))
        figures.save(tmp_path / "e.png", broken)
        figures.finish()  # made again here, where it raises
    assert names(tmp_path) == ["a.png", "b.png", "c.png", "d.png", "made"]


@pytest.mark.skipif(sys.platform != "linux", reason="figures are made in forked copies on Linux")
def test_a_forked_copy_that_hangs_is_ended_and_its_figure_made_here(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import seqclf.backend

    monkeypatch.setattr(seqclf.backend, "cpu_cores", lambda: 2)
    monkeypatch.setattr(runs, "FIGURE_CHILD_SECONDS", 0.5)
    parent = os.getpid()

    def hangs_in_the_copy():
        if os.getpid() != parent:
            time.sleep(60)  # a deadlock, as far as the parent can tell
        return plt.figure()

    started = time.monotonic()
    with runs.Figures() as figures:
        figures.save(tmp_path / "a.png", hangs_in_the_copy)
        figures.save(tmp_path / "b.png", plt.figure)
        figures.finish()
    assert time.monotonic() - started < 30
    assert names(tmp_path) == ["a.png", "b.png"]
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(sys.platform != "linux", reason="figures are made in forked copies on Linux")
def test_an_error_before_finish_ends_the_copies_and_leaves_no_figure(tmp_path, monkeypatch):
    import seqclf.backend

    monkeypatch.setattr(seqclf.backend, "cpu_cores", lambda: 2)

    def slow():
        time.sleep(60)

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), runs.Figures() as figures:
        figures.save(tmp_path / "a.png", slow)
        (pid, _, _), = figures._copies
        raise KeyboardInterrupt
    assert time.monotonic() - started < 30
    with pytest.raises(ChildProcessError):  # ended and reaped
        os.waitpid(pid, os.WNOHANG)
    assert names(tmp_path) == []


def _invoke(args: list) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_predict_to_each_kind_of_target(long_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["predict", long_run.run_dir, "--data", long_run.predict_csv]
    code, expected, _ = _invoke(base)
    assert code == 0 and len(pd.read_csv(io.StringIO(expected))) == 7

    code, out, err = _invoke([*base, "--output", "-"])
    assert (code, out) == (0, expected)
    assert err == "wrote 7 predictions to standard output\n"
    assert names(tmp_path) == []

    (tmp_path / "real.csv").write_text("old\n")
    os.chmod(tmp_path / "real.csv", 0o664)
    Path("link.csv").symlink_to("real.csv")
    code, out, err = _invoke([*base, "--output", "link.csv"])
    assert (code, out, err) == (0, "", "wrote 7 predictions to link.csv\n")
    assert Path("link.csv").is_symlink() and (tmp_path / "real.csv").read_text() == expected
    assert mode(tmp_path / "real.csv") == 0o664

    os.mkfifo("pipe")
    before = identity("pipe")
    reader = Reader(tmp_path / "pipe")
    code, out, err = _invoke([*base, "--output", "pipe"])
    assert code == 0, err
    assert reader.finish().decode() == expected and identity("pipe") == before
    assert names(tmp_path) == ["link.csv", "pipe", "real.csv"]


def test_predict_to_a_directory_fails_before_predicting(long_run, tmp_path):
    code, out, err = _invoke(["predict", long_run.run_dir, "--data", long_run.predict_csv,
                              "--output", tmp_path])
    assert (code, out) == (2, "")
    assert err == f"error: {tmp_path}: is a directory. Give a file name to write.\n"


def test_init_to_standard_output_and_to_a_fifo(tmp_path, monkeypatch):
    from seqclf.config import load_config
    from seqclf.models import auto

    def recommend(profile):  # a small recurrent model, whatever the families do
        rec = auto.recommend(profile)
        rec.model = {"family": "recurrent", "units": 8}
        return rec

    monkeypatch.setattr("seqclf.init.recommend", recommend)
    train = write_csv(tmp_path / "data" / "train.csv", long_frame(30, seed=5))
    monkeypatch.chdir(tmp_path)
    code, out, err = _invoke(["init", train, "-o", "-"])
    assert code == 0, err
    assert "\nwrote standard output\n" in err and err.splitlines()[-1] == "next: seqclf train CONFIG"
    assert "\ndata:\n" in out and f"train: {train.resolve().as_posix()}" in out
    saved = tmp_path / "elsewhere" / "c.yaml"  # absolute paths: it loads from anywhere
    saved.parent.mkdir()
    saved.write_text(out)
    assert load_config(saved).data.train == str(train.resolve())
    assert names(tmp_path) == ["data", "elsewhere"]

    os.mkfifo("c.yaml")  # exists, but is not a file: no --force needed, nothing replaced
    before = identity("c.yaml")
    reader = Reader(tmp_path / "c.yaml")
    code, _, err = _invoke(["init", train, "-o", "c.yaml"])
    assert code == 0, err
    assert reader.finish().decode() == out and identity("c.yaml") == before


@pytest.mark.parametrize("args, message", [
    (["export", "RUN", "--output", "-"],
     "seqclf export: --output must be a directory to create (standard output cannot hold "
     "one). Got '-' instead."),
    (["compare", "RUN", "--plot", "-"],
     "seqclf compare: --plot must be a file (standard output holds the table). Got '-' "
     "instead."),
    (["data", "digits", "--output", "-"],
     "-: is standard output, not a folder. Give a folder to write the files into."),
])
def test_dash_where_no_stream_fits_is_one_line(long_run, args, message):
    args = [long_run.run_dir if a == "RUN" else a for a in args]
    code, out, err = _invoke(args)
    assert (code, out, err) == (2, "", f"error: {message}\n")
