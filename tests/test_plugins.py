"""Adding a model family is one module: this test-only family (a mean over real steps,
then the softmax) plugs in through the registry alone, with its own keys, its own
unknown-key message, a model built, trained, saved and scored like any other."""

from __future__ import annotations

import types

import pytest

from conftest import write_config
from seqclf.errors import SeqclfError
from seqclf.models import registry

EXAMPLE = '''
from typing import Any, Literal
from pydantic import Field
from seqclf.sections import FamilyConfig


class Config(FamilyConfig):
    """Average the real steps, then a Dense layer."""

    family: Literal["mean_pool"] = "mean_pool"
    units: int = Field(4, ge=1, description="units of the Dense layer after the mean")


def features(k: Any, m: Config, prep: Any, x: Any) -> Any:
    x = k.layers.GlobalAveragePooling1D(name="mean")(x)  # the mask: real steps only
    return k.layers.Dense(m.units, activation="relu", name="mean_dense")(x)
'''


@pytest.fixture
def mean_pool():
    """The example family, registered for one test."""
    module = types.ModuleType("example_family")
    # dont_inherit: not this file's `from __future__ import annotations`
    exec(compile(EXAMPLE, "example_family.py", "exec", dont_inherit=True), module.__dict__)
    name = registry.register(module)
    yield module
    registry.unregister(name)


def test_a_registered_family_is_a_config_choice(mean_pool):
    from seqclf.config import validate_config

    cfg = validate_config({"data": {"train": "x.csv"}, "model": {"family": "mean_pool"}})
    assert isinstance(cfg.model, mean_pool.Config) and cfg.model.units == 4
    with pytest.raises(SeqclfError) as info:
        validate_config({"data": {"train": "x.csv"},
                         "model": {"family": "mean_pool", "cell": "gru"}})
    assert str(info.value) == ("config: model.cell is not a valid key for model.family "
                               "'mean_pool'. Valid keys under model for that family: family, "
                               "masking, units.")
    with pytest.raises(SeqclfError, match=r"model\.units must be >= 1\. Got 0 instead"):
        validate_config({"data": {"train": "x.csv"},
                         "model": {"family": "mean_pool", "units": 0}})


def test_unregistered_it_is_unknown_again(mean_pool):
    from seqclf.config import validate_config

    registry.unregister("mean_pool")
    try:
        with pytest.raises(SeqclfError, match=r"model\.family must be one of: 'recurrent'"):
            validate_config({"data": {"train": "x.csv"}, "model": {"family": "mean_pool"}})
    finally:
        registry.register(mean_pool)


def test_a_registered_family_trains_saves_and_scores(mean_pool, long_data, tmp_path):
    from seqclf.config import load_config
    from seqclf.evaluate import evaluate
    from seqclf.train import train

    path = write_config(long_data / "mean_pool.yaml", {
        "data": {"train": "train.csv", "format": "long", "scaling": "standard"},
        "model": {"family": "mean_pool", "units": 3},
        "training": {"epochs": 2, "batch_size": 16, "seed": 0}})
    result = train(load_config(path), tmp_path)
    assert result.epochs_run == 2
    again = evaluate(result.run_dir)
    assert again.accuracy == pytest.approx(result.evaluation.accuracy)


def test_register_refuses_a_module_that_is_not_a_family():
    with pytest.raises(TypeError, match="is not a family module"):
        registry.register(types.ModuleType("not_a_family"))
