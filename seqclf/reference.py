"""The config reference in the README, generated from the config classes: every key,
its default and its description, so that the two cannot drift apart (a test compares
them). Rewrite the README's table with ``python -m seqclf.reference README.md``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from seqclf.config import DataConfig, OptimizerConfig, TrainingConfig
from seqclf.models import registry
from seqclf.sections import DenseHead, FamilyConfig, RecurrentLayers, TokenInput

START, END = "<!-- config keys: start -->", "<!-- config keys: end -->"
# Key groups that several families share, listed once.
SHARED = {"every family": FamilyConfig, "recurrent layers": RecurrentLayers,
          "dense head": DenseHead, "token input": TokenInput}


def _default(info: Any) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
        value = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    return f"`{json.dumps(value)}`"


def _rows(cls: type[BaseModel], keys: list[str]) -> list[str]:
    rows = []
    for key in keys:
        info = cls.model_fields[key]
        text = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | {_default(info)} | {text} |")
    return rows


def markdown() -> str:
    """The reference: one table per section, the model section per family."""
    out = [START, ""]

    def table(title: str, cls: type[BaseModel], keys: list[str]) -> None:
        out.extend([f"**{title}**", "", "| key | default | what it is |", "|---|---|---|",
                    *_rows(cls, keys), ""])

    table("data", DataConfig, list(DataConfig.model_fields))
    families = registry.families()
    for group, mixin in SHARED.items():
        users = [n for n, m in families.items() if issubclass(m.Config, mixin)]
        keys = list(mixin.model_fields)
        table(f"model: {group} ({', '.join(users)})", mixin, keys)
    for name, module in families.items():
        shared = {k for mixin in SHARED.values() if issubclass(module.Config, mixin)
                  for k in mixin.model_fields}
        own = [k for k in module.Config.model_fields if k not in shared]
        title = f"model: family `{name}`"
        if own:
            table(title, module.Config, own)
        else:
            out.extend([f"**{title}**: no keys of its own.", ""])
    table("optimizer (any other key goes to the Keras optimizer)", OptimizerConfig,
          list(OptimizerConfig.model_fields))
    table("training", TrainingConfig, list(TrainingConfig.model_fields))
    out.append(END)
    return "\n".join(out)


def rewrite(readme: Path) -> bool:
    """Put the current reference between the markers in ``readme``; True if it changed."""
    text = readme.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    new = head + markdown() + tail
    readme.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    print("rewritten" if rewrite(Path(sys.argv[1])) else "already current")
