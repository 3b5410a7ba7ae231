"""``model.family: ensemble``: several models trained separately on the same data, their
class probabilities averaged (InceptionTime's published form is five InceptionTime
networks; MiniROCKET's features differ with the seed of their biases).

Each member is a model section of its own (``members``: a family and its keys), trained
``copies`` times with seeds ``training.seed``, ``+1``, ...; everything else (data,
preprocessing, optimizer, training keys) is the config's. The saved model is one Keras
model (the members inside it, an ``Average`` on top), so ``evaluate``, ``predict``,
``export`` and ``compare`` treat an ensemble run like any other.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from seqclf.models import registry
from seqclf.sections import FamilyConfig, invalid

NOT_MEMBERS = ("ensemble", "auto")  # no nesting; auto is resolved for the whole config


class Config(FamilyConfig):
    """Members trained separately, probabilities averaged."""

    family: Literal["ensemble"] = "ensemble"
    members: list[dict[str, Any]] = Field(description="the members' model sections, each "
                                          "with its family and keys, e.g. [{family: "
                                          "inception_time}]")
    copies: int = Field(1, ge=1, description="each member is trained this many times, with "
                        "seeds training.seed, training.seed + 1, ...")

    @model_validator(mode="after")
    def _check_members(self) -> "Config":
        if not self.members:
            raise invalid("members", "a non-empty list of model sections", self.members)
        names = [n for n in registry.families() if n not in NOT_MEMBERS]
        for i, section in enumerate(self.members):
            family = section.get("family", registry.DEFAULT)
            where = f"model.members[{i}]"
            if family not in names:
                raise invalid(f"{where}.family", "one of: " + ", ".join(map(repr, names)),
                              family)
            try:
                self.members[i] = registry.get(family).Config.model_validate(
                    section).model_dump(mode="json")
            except ValidationError as exc:
                raise _member_error(where, exc) from None
        return self

    def member_sections(self, seed: int) -> list[tuple[dict[str, Any], int]]:
        """(model section, training seed) of every model the ensemble trains."""
        return [(section, seed + copy) for section in self.members
                for copy in range(self.copies)]


def _member_error(where: str, exc: ValidationError) -> PydanticCustomError:
    """A member's first problem, at its key under ``model.members[i]``."""
    err = exc.errors()[0]
    ctx = err.get("ctx") or {}
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "constraint_at":
        return invalid(f"{where}.{ctx['key']}", ctx["constraint"], ctx["value"])
    if err["type"] == "extra_forbidden":
        return invalid(f"{where}.{loc}", "absent: it is not a key of that member's family",
                       err["input"])
    if err["type"] == "constraint":
        return invalid(f"{where}.{loc}", ctx.get("constraint", err["msg"]), err["input"])
    text = err["msg"].removeprefix("Input should be ").removeprefix("Value error, ")
    return invalid(f"{where}.{loc}", text, err.get("input"))


def features(k: Any, m: Config, prep: Any, x: Any) -> Any:
    raise RuntimeError("an ensemble is combined from its members' models "
                       "(seqclf.fitting.fit_model), not built from features")


def combine(k: Any, models: list[Any]) -> Any:
    """One Keras model: the members side by side on one input, probabilities averaged."""
    first = models[0]
    inputs = k.Input(shape=first.input_shape[1:], dtype=first.inputs[0].dtype,
                     name=first.inputs[0].name)
    outputs = []
    for i, member in enumerate(models, start=1):
        member.name = f"member_{i}"  # Keras needs unique names for nested models
        outputs.append(member(inputs))
    averaged = (k.layers.Average(name="average", dtype="float32")(outputs)
                if len(outputs) > 1 else outputs[0])
    model = k.Model(inputs, averaged, name="seqclf_ensemble")
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def describe(m: Config) -> str:
    names = [s["family"] for s in m.members]
    return (f"ensemble of {len(names) * m.copies}: " + " + ".join(names)
            + (f", {m.copies} seeds each" if m.copies > 1 else ""))

