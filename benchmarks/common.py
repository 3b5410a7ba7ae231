"""What each benchmark report states about where it ran."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path


def gpus() -> list[str]:
    """The NVIDIA GPUs ``nvidia-smi -L`` lists (no framework import: reports must not
    depend on which backend happens to be installed)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(" (UUID")[0].split(": ", 1)[-1]
            for line in out.stdout.splitlines() if line.startswith("GPU ")]


def machine() -> str:
    """CPU model, cores, memory, OS and GPUs, in one line."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    found = gpus()
    gpu = ", ".join(found) if found else "no GPU"
    return f"{model}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.machine()}, {gpu}"
