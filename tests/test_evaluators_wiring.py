"""The paper's evaluators wired into notebooks 05 and 06 (issue 22 items 3-5, 7-9), on tiny
weights in each package's own format (``tests/paper_fixtures.write_evaluators``): CheXbert for
both notebooks' labels, RadGraph F1 in the NLG table, RadDino with real and generated images at
one resolution, BioViL-T alignment; and the release's feeding: annotated prompts verbatim, its
understanding letterbox, whole prompts, bf16 sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_eval_pipeline import TINY, eval_run  # noqa: F401 (a fixture, built for this module)

from tests.paper_fixtures import write_evaluators
from unixlib.cli.main import main
from unixlib.data import processed
from unixlib.data.schema import GEN_TEXT_COLUMN
from unixlib.data.sources.letterbox import release_letterbox
from unixlib.eval import report_eval
from unixlib.eval.biovil import BioViLT, chexgenbench_mean
from unixlib.eval.encoders import load_raddino
from unixlib.eval.radgraph import RadGraphAnnotator
from unixlib.eval.uncertainty import Resampling
from unixlib.experiments import evaluation as pipeline
from unixlib.experiments import evaluators
from unixlib.experiments.samples import generate_images
from unixlib.experiments.understanding_tables import nlg_table


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    return write_evaluators(tmp_path_factory.mktemp("evaluators"))


def test_the_configured_chexbert_labels_the_reports(weights, tmp_path) -> None:
    """The paper's labeler from the tiny chexbert.pth (notebooks 05 and 06 both take it)."""
    ckpt = torch.load(weights["chexbert_checkpoint"], weights_only=True)
    for i in range(13):  # every head but No Finding says "uncertain"
        ckpt["model_state_dict"][f"module.linear_heads.{i}.bias"][3] = 100.0
    torch.save(ckpt, tmp_path / "chexbert.pth")
    s = pipeline.EvalSettings(
        chexbert_checkpoint=str(tmp_path / "chexbert.pth"),
        chexbert_bert_dir=str(weights["chexbert_bert_dir"]),
    )
    labeler, name = pipeline.labeler_of(s)
    labels = report_eval.memoized(labeler)(["The heart size is normal.", "Lungs are clear."])
    assert name == "CheXbert"
    assert (labels.drop(columns="no_finding") == -1.0).all().all()  # CheXbert's, not the rules'
    rules, _ = pipeline.labeler_of(pipeline.EvalSettings())
    rule_labels = report_eval.memoized(rules)(["The heart size is normal."])
    assert rule_labels.at[0, "cardiomegaly"] == 0.0  # the rule labeler reads the negation


def test_radgraph_f1_is_an_nlg_column_when_configured(weights) -> None:
    annotator = RadGraphAnnotator(weights["radgraph_model"], weights["radgraph_bert_dir"])
    refs = ["heart size normal", "effusion"]
    methods = {"same": list(refs), "other": ["effusion", ""], "blank": ["", " "]}
    f1 = evaluators.radgraph_f1(annotator, refs, methods)
    assert f1["same"] == pytest.approx([1.0, 1.0])
    assert f1["other"] == pytest.approx([0.0, 0.0])  # disjoint graph; empty report
    assert f1["blank"] == pytest.approx([0.0, 0.0])
    references = ["The heart is normal.", "No effusion.", "Lungs are clear."]
    written = {"m": ["The heart is normal.", "Effusion.", "Lungs clear."]}
    rows = report_eval.report_rows(references, written)
    scores = report_eval.score_methods(references, written)
    r = Resampling(200, 0)
    table = nlg_table(rows, scores, {}, r)
    assert table["radgraph_f1"].iloc[0] == "n/a (no local RadGraph weights)"
    table = nlg_table(rows, scores, {}, r, {"m": np.array([1.0, 0.0, 0.5])})
    row = table.iloc[0]
    assert row["radgraph_f1"] == pytest.approx(0.5)  # the mean over reports
    assert 0.0 <= row["radgraph_f1_low"] <= 0.5 <= row["radgraph_f1_high"] <= 1.0


def test_biovil_alignment_is_chexgenbench_s_score(weights) -> None:
    bio = BioViLT(weights["biovil_dir"], device="cpu")
    rng = np.random.default_rng(0)
    sets = {"a": rng.random((3, 40, 40)), "b": rng.random((3, 40, 40))}
    prompts = ["heart size normal", "no pleural effusion", "lungs clear"]
    got = evaluators.biovil_alignment(bio, sets, prompts)
    for name, images in sets.items():
        cosines = bio.alignment(images, prompts)
        np.testing.assert_allclose(got[name], np.round(cosines, 3), atol=1e-7)  # each rounded
        assert chexgenbench_mean(got[name]) == chexgenbench_mean(cosines)


def test_real_images_meet_the_encoder_at_the_generated_size(weights) -> None:
    """The real test images were read at encoder_image_size (256 in the paper profile) while
    the generated ones arrived at 512: a bottleneck only the real images passed."""
    raddino = load_raddino(weights["raddino_dir"], device="cpu")
    s = pipeline.EvalSettings()
    generated = {"UniX stage 2": 256, "UniX stage 3": 512}
    assert evaluators.feature_image_size(s, raddino, generated) == 512
    s.real_image_size = 384
    assert evaluators.feature_image_size(s, raddino, generated) == 384
    reference = object()  # the reference encoders resize every image to their own size
    assert evaluators.feature_image_size(pipeline.EvalSettings(), reference, generated) == 64
    assert pipeline.EvalSettings().raddino_resize == 299  # CheXGenBench's bottleneck, for all


def test_release_letterbox_is_the_release_s_preprocessing(tmp_path) -> None:
    """Thumbnail (Lanczos, aspect kept) pasted on a white canvas, where our cache pads black."""
    rng = np.random.default_rng(1)
    source = Image.fromarray(rng.integers(0, 256, (20, 40), dtype=np.uint8))  # 40 wide, 20 high
    source.save(tmp_path / "x.png")
    got = release_letterbox(tmp_path / "x.png", size=16)
    assert got.shape == (16, 16) and got.dtype == np.float32
    assert (got[:4] == 1.0).all() and (got[12:] == 1.0).all()  # white padding, top and bottom
    body = source.convert("RGBA").resize((16, 8), Image.Resampling.LANCZOS, reducing_gap=2.0)
    np.testing.assert_array_equal(got[4:12], np.asarray(body.convert("L"), np.float32) / 255)


def test_table2_images_can_follow_the_release(tmp_path) -> None:
    rng = np.random.default_rng(2)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (500, 400), dtype=np.uint8)).save(
            tmp_path / f"{name}.jpg"
        )
    und = pd.DataFrame(
        {
            "id": ["a", "b"],
            "image_path": ["images/a.png", "images/b.png"],
            "prompt": ["p", "p"],
            "reference": ["r", "r"],
            "source_image": [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")],
        }
    )
    empty = pd.DataFrame({"image_path": []})
    inputs = pipeline.EvalInputs(empty, None, tmp_path, empty, [], empty, und=und)
    images = inputs.und_images(384, "release")
    assert images.shape == (2, 1, 384, 384)
    assert torch.equal(images[1, 0], torch.from_numpy(release_letterbox(tmp_path / "b.jpg")))
    assert (images[:, :, :, :2] == 1.0).all()  # 400 x 500 -> 307 x 384: white on both sides
    inputs.und = und.drop(columns="source_image")
    inputs._images.clear()
    with pytest.raises(ValueError, match="needs the original images"):
        inputs.und_images(384, "release")


class _Recorder(torch.nn.Module):
    """A stand-in model that records what generate_images feeds it."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = type("C", (), {"sequence_layout": "ours"})()
        self.ids: list[list[int]] = []

    def generate_image(self, ids, **kw) -> torch.Tensor:
        self.ids += ids
        return torch.zeros(len(ids), 1, 4, 4)


def test_max_report_tokens_zero_keeps_the_whole_prompt(eval_run) -> None:  # noqa: F811
    _, tokenizer, _ = processed.load_processed(eval_run)
    text = "FINDINGS: The heart is mildly enlarged. There is a small left pleural effusion."
    model = _Recorder()
    generate_images(model, [text], tokenizer, max_report_tokens=0)
    generate_images(model, [text], tokenizer, max_report_tokens=5)
    assert model.ids[0] == tokenizer.encode(text) and len(model.ids[0]) > 5
    assert model.ids[1] == tokenizer.encode(text)[:5]


def test_generation_prompts_are_the_annotated_prompts_verbatim(eval_run, tmp_path, monkeypatch):  # noqa: F811
    """The cleaner prepended "FINDINGS: " and dropped words of the LLaVA-Rad prompts."""
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    for item in (eval_run / "data").iterdir():
        (run / "data" / item.name).symlink_to(item)
    (run / "data" / "processed.parquet").unlink()
    frame = pd.read_parquet(eval_run / "data" / "processed.parquet")
    test = frame["split"] == "test"
    frame[GEN_TEXT_COLUMN] = ""
    frame.loc[test, GEN_TEXT_COLUMN] = [f"Stable  appearance {i}" for i in range(int(test.sum()))]
    frame.to_parquet(run / "data" / "processed.parquet")
    inputs = pipeline.load_inputs(pipeline.EvalSettings(run_dir=str(run)))
    assert inputs.prompts == frame.loc[test, GEN_TEXT_COLUMN].tolist()
    assert inputs.references == frame.loc[test, "report_clean"].tolist()  # Table 2's fallback
    assert inputs.cleaning == "rule-cleaned"
    fed = []
    monkeypatch.setattr(
        pipeline, "generate_images", lambda m, r, t, **kw: fed.append(list(r)) or np.zeros((1,))
    )
    models = {3: torch.nn.Linear(1, 1)}
    pipeline.generate_sets(models, inputs, pipeline.EvalSettings(run_dir=str(run)))
    assert fed[0] == inputs.prompts  # the model's images: each row's own prompt, verbatim
    assert sorted(fed[1]) == sorted(inputs.prompts)  # shuffled
    assert fed[2] == [""] * len(inputs.prompts)


def test_sampling_dtype_is_a_parameter_defaulting_to_the_release_s_bf16() -> None:
    assert pipeline.EvalSettings().sample_dtype == "bf16"
    with evaluators.sample_autocast("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with evaluators.sample_autocast("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="sample_dtype must be one of"):
        evaluators.sample_autocast("fp16", "cpu")


@pytest.mark.slow
def test_evaluate_with_every_evaluator(eval_run, weights, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "figures"
    sets = [f"--set={k}={v}" for k, v in weights.items()]
    sets += ["--set=sample_dtype=fp32", "--set=generated_pixels=release"]
    assert main(["evaluate", "--run-dir", str(eval_run), "--out", str(out), *TINY, *sets]) == 0
    nlg = pd.read_csv(out / "table_nlg.csv")
    assert np.isfinite(nlg["radgraph_f1"].astype(float)).all()  # numbers, not "n/a"
    t2 = pd.read_csv(out / "table2_understanding.csv")
    assert set(t2[t2["source"] != "paper (quoted)"]["labeler"]) == {"CheXbert"}
    t3 = pd.read_csv(out / "table3_generation.csv")
    ours = t3[t3["source"] != "paper (quoted)"]
    assert ours["encoder"].str.contains(r"RadDino \(rad-dino, CLS features; images 299 px").all()
    summary = json.loads((out / "evaluation_summary.json").read_text())
    # BioViL-T's per-image scores are rounded to 3 decimals, as CheXGenBench rounds them: the
    # 28 studies' sum is a whole number of thousandths
    for v in summary["alignment"].values():
        assert abs(v * 28_000 - round(v * 28_000)) < 1e-6
