"""The sigmoid losses' initial temperature and bias (`siglip_init_scale`, `siglip_init_bias`).

SigLIP's b = −10 is the log-odds of a positive among ~32k columns; in a batch of 64 it leaves every
positive logit below 0 (t·cos + b ≤ 10 − 10), which stalled the demo's sigmoid runs
(docs/RESULTS.md, "Diagnosis"). "auto" derives b from the batch's own column layout.
"""

from __future__ import annotations

import math

import pytest

from train import config as train_config
from train import model


def test_auto_bias_is_the_log_odds_of_a_positive_column():
    plain = train_config.TrainConfig(loss="siglip", negatives="none", positives=1, batch_size=64, siglip_init_bias="auto")
    assert plain.siglip_bias() == pytest.approx(math.log(1 / 63))
    # fair-siglip: 2 positives and 2 KG negatives per image -> 4 columns per image, 2 of them positive
    full = train_config.TrainConfig(loss="fair-siglip", positives=2, batch_size=64, siglip_init_bias="auto")
    assert full.siglip_bias() == pytest.approx(math.log(2 / (64 * 4 - 2)))
    assert full.siglip_bias(world_size=2) == pytest.approx(math.log(2 / (128 * 4 - 2)))
    assert train_config.TrainConfig(siglip_init_bias=-10.0).siglip_bias() == -10.0


def test_bad_init_bias_is_rejected():
    with pytest.raises(ValueError, match="siglip_init_bias"):
        train_config.TrainConfig(siglip_init_bias="large").validate()


def test_model_starts_at_the_configured_temperature_and_bias():
    cfg = train_config.TrainConfig(loss="siglip", negatives="none", positives=1, batch_size=8, siglip_init_scale=20.0,
                         siglip_init_bias="auto").validate()
    built = model.create(cfg)
    assert built.base.logit_scale.exp().item() == pytest.approx(20.0, rel=1e-5)
    assert built.base.logit_bias.item() == pytest.approx(math.log(1 / 7), rel=1e-5)
    clip = model.create(train_config.TrainConfig(loss="clip", negatives="none").validate())
    assert getattr(clip.base, "logit_bias", None) is None


def test_cli_flag_reads_a_number_or_auto():
    from train.cli import _number_or_word

    assert _number_or_word("-4.5") == -4.5 and _number_or_word("auto") == "auto" and _number_or_word(None) is None
    cfg = train_config.from_dict({"siglip_init_bias": _number_or_word("auto")}).validate()
    assert cfg.siglip_init_bias == "auto"
