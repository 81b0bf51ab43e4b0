"""Fig. 4: the prompt cases, shared-noise sampling and the finding-contrast measure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unixlib.data.text.tokenizer import train_bpe
from unixlib.eval.finding_contrast import finding_contrast
from unixlib.experiments import fig4
from unixlib.model.config import preset
from unixlib.model.unix import UniX


def test_finding_contrast_by_hand() -> None:
    normal = np.zeros((2, 3))
    case = normal.copy()
    case[0, 0], case[0, 1], case[1, 2] = 0.2, 0.4, -0.3  # two denser pixels, one darker
    references = {"normal": normal, "case": case, "same": normal.copy()}
    gen_normal = np.full((2, 2, 3), 0.5)  # (n, H, W)
    gen_case = gen_normal.copy()
    gen_case[0, 0, 0] += 0.2  # sample 0: +0.2 where the reference is denser (mean +0.1)
    gen_case[:, 1, 2] += 0.1  # both samples: brighter where the reference is darker (wrong way)
    generated = {"normal": gen_normal, "case": gen_case, "same": gen_normal.copy()}

    table = finding_contrast(generated, references).set_index("case")
    row = table.loc["case"]
    assert row["region_px"] == 3
    assert row["reference"] == pytest.approx((0.2 + 0.4 + 0.3) / 3)
    # signed by the reference: +0.1 (pixel 0,0), 0 (pixel 0,1), -0.1 (pixel 1,2, wrong way)
    assert row["generated"] == pytest.approx((0.1 + 0.0 - 0.1) / 3)
    assert row["ratio"] == pytest.approx(0.0)
    assert table.loc["same", "region_px"] == 0 and math.isnan(table.loc["same", "ratio"])
    assert "normal" not in table.index

    generated["case"] = gen_normal + 0.5 * (case - normal)  # drawn at half the strength
    table = finding_contrast(generated, references)
    assert table.case.tolist() == ["case", "same"]
    assert table.ratio.iloc[0] == pytest.approx(0.5)


def test_finding_contrast_rejects_bad_input() -> None:
    with pytest.raises(KeyError, match="normal"):
        finding_contrast({"a": np.zeros((1, 2, 2))}, {"normal": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="differ from the normal"):
        finding_contrast(
            {"normal": np.zeros((1, 3, 3)), "a": np.zeros((1, 2, 2))},
            {"normal": np.zeros((3, 3)), "a": np.ones((3, 3))},
        )


def test_synthetic_cases_draw_their_finding_on_the_right_side() -> None:
    prompts, refs = fig4.synthetic_prompts(seed=0, size=64)
    assert list(prompts) == [title for title, _ in fig4.CASES] == list(fig4.REAL_TEXTS)
    regions = {t: np.abs(refs[t] - refs["normal"]) > 0.05 for t in refs}
    assert not regions["normal"].any()
    assert all(regions[t].sum() >= 100 for t in refs if t != "normal")  # visible at 64 px
    # the patient's left is the image's right
    cols = {t: np.nonzero(regions[t])[1] for t in refs}
    assert cols["left effusion"].min() > 32 and cols["right effusion"].max() < 32
    assert cols["bilateral effusions"].min() < 32 < cols["bilateral effusions"].max()
    assert regions["severe cardiomegaly"].sum() > regions["mild cardiomegaly"].sum()
    assert "large left pleural effusion" in prompts["left effusion"].lower()


def test_laterality_by_hand() -> None:
    """Own side vs the mirrored case's region, with references that do not overlap."""
    normal = np.zeros((2, 4))
    left, right = normal.copy(), normal.copy()
    left[:, 3] = 0.4  # the patient's left is the image's right
    right[:, 0] = 0.2
    references = {"normal": normal, "left effusion": left, "right effusion": right}
    gen_normal = np.zeros((2, 2, 4))  # (n, H, W)
    gen_left = gen_normal.copy()
    gen_left[:, :, 3], gen_left[:, :, 0] = 0.2, 0.02  # half strength on its side, a trace opposite
    gen_right = gen_normal.copy()
    gen_right[:, :, 3] = 0.1  # drawn on the wrong side only
    generated = {"normal": gen_normal, "left effusion": gen_left, "right effusion": gen_right}

    table = fig4.laterality(generated, references).set_index("case")
    assert table.loc["left effusion", "own_side"] == pytest.approx(0.5)
    assert table.loc["left effusion", "other_side"] == pytest.approx(0.02 / 0.2)
    assert table.loc["right effusion", "own_side"] == pytest.approx(0.0)
    assert table.loc["right effusion", "other_side"] == pytest.approx(0.1 / 0.4)
    assert table["shows_side"].tolist() == [True, False]
    # real SynthCXR renderings as "generated" images: each on its own side only
    _, refs = fig4.synthetic_prompts(seed=0, size=64)
    as_images = {title: image[None] for title, image in refs.items()}
    table = fig4.laterality(as_images, refs).set_index("case")
    assert table["own_side"].tolist() == pytest.approx([1.0, 1.0])
    assert (table["other_side"].abs() < 0.05).all() and table["shows_side"].all()


def test_generate_shares_noise_across_prompts() -> None:
    torch.manual_seed(0)
    model = UniX(preset("tiny", initializer_range=0.1)).eval()
    torch.nn.init.normal_(model.llm2vae.weight, std=0.05)  # zero-initialised: velocity 0
    texts = ["FINDINGS: Clear lungs. IMPRESSION: Normal.", "FINDINGS: Large effusion."]
    tokenizer = train_bpe(texts * 4, vocab_size=300)
    prompts = {"normal": texts[0], "copy": texts[0], "other": texts[1]}
    out = fig4.generate(model, prompts, tokenizer, n=2, seed=3, steps=3, cfg_scale=2.0)
    assert {t: a.shape for t, a in out.items()} == {t: (2, 64, 64) for t in prompts}
    np.testing.assert_array_equal(out["normal"], out["copy"])  # same text, same noise
    assert np.abs(out["normal"] - out["other"]).max() > 1e-4  # the prompt matters
    assert np.abs(out["normal"][0] - out["normal"][1]).max() > 1e-3  # samples differ
    with pytest.raises(ValueError, match="n must be"):
        fig4.generate(model, prompts, tokenizer, n=0)


def test_stage3_checkpoint_is_chosen_on_validation_patients_not_the_figures():
    """Issue 22.15: the choice of checkpoint reads other patients than Fig. 4 shows, and
    prefers the side first, then the contrast."""
    import pandas as pd

    from unixlib.experiments import selection

    size = 32
    figure, _ = fig4.synthetic_prompts(0, size)
    validation, _ = fig4.synthetic_prompts(0 + selection.VALIDATION_SEED_OFFSET, size)
    assert figure != validation  # other patients, other report wordings
    scores = pd.DataFrame(
        {"step": [150, 300, 450], "side": [0.1, 0.4, 0.4], "contrast": [0.9, 0.5, 0.7]}
    )
    assert selection.best_step(scores) == 450  # the best side, then the higher contrast
