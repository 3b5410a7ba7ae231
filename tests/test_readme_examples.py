"""Every example in the README's "Use from Python" and "Deploy" sections runs as written.

The examples run in order, in a scratch directory that sees the repository's configs/
and data/ (they save models/digits, export it to deploy/digits, then deploy it), with
the installed ``seqclf`` command. An untagged block after a bash block is that
command's output: each of its lines must appear, numbers aside.
"""

from __future__ import annotations

import pytest
import os
import re
import subprocess
import sys

from conftest import ROOT

SECTIONS = ("Use from Python", "Deploy")
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def examples() -> list[tuple[str, str, str]]:
    """(section, language, code) of each fenced block in SECTIONS, in README order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = []
    for title in SECTIONS:
        match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.M | re.S)
        assert match, f"README has no '## {title}' section"
        for lang, code in re.findall(r"^```(\w*)\n(.*?)^```$", match.group(1), re.M | re.S):
            found.append((title, lang, code))
    return found


def test_the_sections_have_python_and_shell_examples():
    kinds = [(title, lang) for title, lang, _ in examples()]
    assert kinds.count(("Use from Python", "python")) == 2
    assert ("Deploy", "bash") in kinds and ("Deploy", "python") in kinds


def _like(shown: str, printed: str) -> bool:
    """``shown`` (a README output line) matches a printed line, whatever its numbers."""
    pattern = NUMBER.join(re.escape(part) for part in re.split(NUMBER, shown.strip()))
    return any(re.fullmatch(pattern, line.strip()) for line in printed.splitlines())


@pytest.mark.slow
def test_readme_examples_run(tmp_path):
    for name in ("configs", "data"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}"
                                 f"{os.environ.get('PATH', '')}", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("SEQCLF_DEBUG", None)
    printed = ""
    for n, (title, lang, code) in enumerate(examples(), start=1):
        where = f"README '{title}' example {n} ({lang or 'output'})"
        if lang == "":
            for line in code.strip().splitlines():
                assert _like(line, printed), f"{where}: {line!r} not in the output:\n{printed}"
            continue
        command = [sys.executable, "-c", code] if lang == "python" else ["bash", "-ec", code]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
        printed = done.stdout
    assert (tmp_path / "deploy" / "digits" / "model.onnx").is_file()
