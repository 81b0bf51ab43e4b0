"""The paper's understanding test set (the release's ``test_data.json``): the strict reader,
``prepare``'s ``understanding_test.parquet``, and Table 2's rows prompted each with its own
instruction (``unixlib.experiments.evaluation.understanding``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tests.paper_fixtures import TEST_STUDIES, TRAIN_STUDIES, write_mimic_cxr_jpg
from tests.source_helpers import write_image
from unixlib.data.processed import DataPaths
from unixlib.data.schema import LABELS
from unixlib.data.sources.prepare import prepare
from unixlib.data.sources.understanding_test import (
    UnderstandingTestError,
    read_understanding_test,
)
from unixlib.data.text.prompts import EVAL_PROMPT
from unixlib.experiments import evaluation as pipeline
from unixlib.experiments.samples import generate_reports

STUDIES = [
    ("10715477", "55878458", "77961fbc-766a38fd"),
    ("10715477", "52363927", "701d2394-b800427d"),
    ("10650001", "50124332", "3878f00f-4b737c96"),
]
PROMPTS = [
    "<image>Review this X-ray and provide detailed FINDINGS.",
    "<image>Interpret this X-ray image and summarize the FINDINGS and IMPRESSION.",
    "<image>Review this X-ray and provide detailed FINDINGS.",
]
ANSWERS = [
    "FINDINGS: Small right pleural effusion. Moderate cardiomegaly.",
    "FINDINGS: Cardiac silhouette is enlarged. IMPRESSION: Improving edema.",
    "  FINDINGS: No pneumothorax.\n",
]


def _rel(subject: str, study: str, dicom: str) -> str:
    return f"files/p{subject[:2]}/p{subject}/s{study}/{dicom}.jpg"


def _entries() -> list[dict]:
    return [
        {
            "messages": [
                {"content": prompt, "role": "user"},
                {"content": answer, "role": "assistant"},
            ],
            "images": [_rel(*study)],
        }
        for study, prompt, answer in zip(STUDIES, PROMPTS, ANSWERS, strict=True)
    ]


def _write(tmp: Path, entries: object, images: bool = True) -> tuple[Path, Path]:
    root = tmp / "mimic"
    if images:
        for study in STUDIES:
            write_image(root / _rel(*study), (24, 20), 90)
    path = tmp / "test_data.json"
    path.write_text(json.dumps(entries))
    return path, root


def test_reader_extracts_id_image_prompt_and_reference_exactly(tmp_path: Path) -> None:
    path, root = _write(tmp_path, _entries())
    rows = read_understanding_test(path, root)
    assert list(rows.columns) == ["id", "image", "prompt", "reference"]
    assert rows["id"].tolist() == [s[2] for s in STUDIES]
    assert rows["image"].tolist() == [str(root / _rel(*s)) for s in STUDIES]
    assert rows["prompt"].tolist() == [
        "Review this X-ray and provide detailed FINDINGS.",
        "Interpret this X-ray image and summarize the FINDINGS and IMPRESSION.",
        "Review this X-ray and provide detailed FINDINGS.",
    ]
    assert rows["reference"].tolist() == [  # section prefixes kept, as the release scores them
        "FINDINGS: Small right pleural effusion. Moderate cardiomegaly.",
        "FINDINGS: Cardiac silhouette is enlarged. IMPRESSION: Improving edema.",
        "FINDINGS: No pneumothorax.",
    ]


def _break(entries: list[dict], how: str) -> object:
    e = entries[1]
    if how == "not a list":
        return {"messages": []}
    if how == "no messages":
        del e["messages"]
    elif how == "no images":
        del e["images"]
    elif how == "two images":
        e["images"] = [e["images"][0], e["images"][0]]
    elif how == "no image":
        e["images"] = []
    elif how == "roles swapped":
        e["messages"] = e["messages"][::-1]
    elif how == "no answer turn":
        e["messages"] = e["messages"][:1]
    elif how == "empty answer":
        e["messages"][1]["content"] = "  \n"
    elif how == "empty prompt":
        e["messages"][0]["content"] = "<image>"
    elif how == "absolute image":
        e["images"] = ["/" + e["images"][0]]
    elif how == "duplicate":
        e["images"] = entries[0]["images"]
    return entries


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("not a list", r"test_data\.json: expected a non-empty JSON list of entries"),
        ("no messages", r"test_data\.json: entry 1: no 'messages'"),
        ("no images", r"test_data\.json: entry 1: no 'images'"),
        ("two images", r"entry 1: expected exactly one image path, got \['files/"),
        ("no image", r"entry 1: expected exactly one image path, got \[\]"),
        ("roles swapped", r"entry 1: expected a user then an assistant message, got roles "),
        ("no answer turn", r"entry 1: expected a user then an assistant message, got roles \['u"),
        ("empty answer", r"test_data\.json: entry 1: empty answer \(the reference report\)"),
        ("empty prompt", r"entry 1: empty prompt"),
        ("absolute image", r"entry 1: image '/files/.*' is not a \.jpg path relative to the"),
        ("duplicate", r"test_data\.json: 1 images listed twice, e\.g\. \['77961fbc"),
    ],
)
def test_reader_rejects_a_malformed_entry_naming_file_and_index(
    tmp_path: Path, how: str, message: str
) -> None:
    path, root = _write(tmp_path, _break(_entries(), how))
    with pytest.raises(UnderstandingTestError, match=message):
        read_understanding_test(path, root)


def test_reader_rejects_bad_json_and_a_missing_file(tmp_path: Path) -> None:
    path, root = _write(tmp_path, _entries())
    path.write_text('[{"messages": ')
    with pytest.raises(UnderstandingTestError, match=r"test_data\.json: not valid JSON"):
        read_understanding_test(path, root)
    with pytest.raises(FileNotFoundError, match="understanding test set not found"):
        read_understanding_test(tmp_path / "nope.json", root)


def test_reader_lists_missing_images_with_examples_and_count(tmp_path: Path) -> None:
    entries = _entries() + [
        {**_entries()[0], "images": [_rel("10000001", f"5000000{i}", f"gone{i}")]} for i in range(3)
    ]
    path, root = _write(tmp_path, entries)
    with pytest.raises(UnderstandingTestError) as err:
        read_understanding_test(path, root)
    text = str(err.value)
    assert "3 of 6 images not found under" in text and str(root) in text
    assert all(f"gone{i}.jpg" in text for i in range(3))
    (root / _rel(*STUDIES[0])).unlink()  # 4 missing: 3 examples named, the count is 4
    with pytest.raises(UnderstandingTestError, match="4 of 6 images not found") as err:
        read_understanding_test(path, root)
    assert str(err.value).count(".jpg") == 3


def _mimic_with_images(tmp: Path) -> Path:
    """The dry-run MIMIC fixture with readable 30 x 40 JPGs (its own are empty files)."""
    root = write_mimic_cxr_jpg(tmp / "mimic")
    for subject, study, dicom in TEST_STUDIES + TRAIN_STUDIES:
        write_image(root / _rel(subject, study, dicom))
    return root


def test_prepare_writes_the_understanding_test_table_with_cached_images(tmp_path: Path) -> None:
    root = _mimic_with_images(tmp_path)
    out = tmp_path / "data"
    kw = dict(root=root, test_annotations=root / "LLAVARAD_ANNOTATIONS_TEST.csv")
    result = prepare(
        "mimic", out, 16, max_reject_frac=0.5, understanding_test=root / "test_data.json", **kw
    )
    assert result.n_understanding_test == 2
    manifest = pd.read_parquet(out / "manifest.parquet")
    und = pd.read_parquet(DataPaths(out).understanding_test)
    assert list(und.columns) == ["id", "image_path", "prompt", "reference", "source_image"]
    annotated, other = (s[2] for s in TEST_STUDIES)
    # the original JPGs, for the release's own preprocessing (und_preprocess="release")
    assert und["source_image"].tolist() == [str(root / _rel(*s)) for s in TEST_STUDIES]
    # the test image that the generation set (LLaVA-Rad annotations) leaves out is still here
    assert und["id"].tolist() == [annotated, other]
    assert other not in set(manifest["id"])
    assert und["image_path"][0] == manifest.set_index("id").at[annotated, "image_path"]
    assert und["prompt"].tolist() == [
        "Review this X-ray and provide detailed FINDINGS.",
        "Examine this X-ray image and describe the FINDINGS and IMPRESSION.",
    ]
    assert und["reference"].tolist() == [
        "FINDINGS: Case 0, mild cardiomegaly.",
        "FINDINGS: Case 1, mild cardiomegaly.",
    ]
    for rel in und["image_path"]:
        with Image.open(out / rel) as img:
            assert (img.mode, img.size) == ("L", (16, 16))

    prepare("mimic", out, 16, max_reject_frac=0.5, **kw)  # not asked for: no stale table left
    assert not DataPaths(out).understanding_test.exists()


def test_prepare_rejects_unreadable_images_and_other_sources(tmp_path: Path) -> None:
    root = _mimic_with_images(tmp_path)
    subject, study, dicom = TEST_STUDIES[1]
    (root / _rel(subject, study, dicom)).write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(UnderstandingTestError, match=r"1 understanding test images could not be"):
        prepare(
            "mimic",
            tmp_path / "data",
            16,
            max_reject_frac=0.7,
            root=root,
            understanding_test=root / "test_data.json",
        )
    with pytest.raises(ValueError, match="understanding_test is a mimic source argument"):
        prepare("synth", tmp_path / "s", 16, n_train=2, understanding_test="x.json")


def _test_rows(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"t{i}" for i in range(n)],
            "image_path": [f"images/t{i}.png" for i in range(n)],
            "report_clean": [f"Report {i}." for i in range(n)],
        }
    )


def test_understanding_rows_are_the_release_set_when_prepared(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path)
    rows, name = pipeline.understanding_rows(_test_rows(3), paths, n_test=2)
    assert name == "the test split"
    assert rows["id"].tolist() == ["t0", "t1", "t2"]  # the caller already cut the test rows
    assert (rows["prompt"] == EVAL_PROMPT).all()
    assert rows["reference"].tolist() == ["Report 0.", "Report 1.", "Report 2."]
    und = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "image_path": ["images/a.png", "images/b.png", "images/c.png"],
            "prompt": ["P a", "P b", "P c"],
            "reference": ["FINDINGS: a", "FINDINGS: b", "FINDINGS: c"],
        }
    )
    und.to_parquet(paths.understanding_test)
    rows, name = pipeline.understanding_rows(_test_rows(3), paths, n_test=2)
    assert name == "the paper's understanding test set (test_data.json, 2 pairs)"
    pd.testing.assert_frame_equal(rows, und.iloc[:2])


class _Recorder:
    """A stand-in UniX: records the prompt ids of every ``generate_report`` call."""

    def __init__(self, layout: str = "ours") -> None:
        self.config = SimpleNamespace(sequence_layout=layout)
        self.calls: list[list[list[int]]] = []

    def eval(self) -> _Recorder:
        return self

    def parameters(self):
        return iter([torch.zeros(1)])

    def generate_report(self, images, prompt_ids, max_new_tokens):
        assert len(prompt_ids) == len(images)
        self.calls.append(prompt_ids)
        return [[len(p)] for p in prompt_ids]


class _Tok:
    """Word -> its length; the official encoding marks itself with a leading 0."""

    def encode(self, text: str) -> list[int]:
        return [len(w) for w in text.split()]

    def encode_official(self, text: str) -> list[int]:
        return [0, *self.encode(text)]

    def decode(self, ids: list[int]) -> str:
        return f"report of a {ids[0]}-token prompt"


def test_generate_reports_prompts_each_image_with_its_own_prompt() -> None:
    model, images = _Recorder(), torch.zeros(3, 1, 8, 8)
    prompts = ["Give the FINDINGS.", "Describe it", "Give the FINDINGS."]
    reports = generate_reports(model, images, _Tok(), 4, prompt=prompts, batch_size=2)
    assert model.calls == [[[4, 3, 9], [8, 2]], [[4, 3, 9]]]  # batches of 2, row by row
    assert reports == [f"report of a {n}-token prompt" for n in (3, 2, 3)]
    official = _Recorder("official")
    generate_reports(official, images, _Tok(), 4, prompt="One prompt", batch_size=8)
    assert official.calls == [[[0, 3, 6]] * 3]  # one prompt for all, encoded the official way
    with pytest.raises(ValueError, match="2 prompts for 3 images"):
        generate_reports(model, images, _Tok(), 4, prompt=prompts[:2])


def test_table2_is_computed_on_the_understanding_rows_with_their_prompts(monkeypatch) -> None:
    """``pipeline.understanding``: the model's reports come from Table 2's rows and prompts,
    and are scored against those rows' references, not the generation test split's."""
    seen = {}

    def fake_reports(model, images, tokenizer, max_new_tokens, prompt, batch_size):
        seen.update(n=len(images), prompt=prompt)
        return ["FINDINGS: Cardiomegaly.", "FINDINGS: No acute process."]

    monkeypatch.setattr(pipeline, "generate_reports", fake_reports)
    train = _test_rows(4).assign(report_clean=["No acute process."] * 4)
    for name in LABELS:
        train[name] = 0.0
    test = _test_rows(3)
    und = pd.DataFrame(
        {
            "id": ["u0", "u1"],
            "image_path": ["images/u0.png", "images/u1.png"],
            "prompt": ["Describe the FINDINGS.", "Give the FINDINGS and IMPRESSION."],
            "reference": ["FINDINGS: Cardiomegaly.", "FINDINGS: Right pleural effusion."],
        }
    )
    s = pipeline.EvalSettings()
    model = SimpleNamespace(config=SimpleNamespace(image_size_und=8))  # the ViT input size
    size = s.encoder.image_size
    inputs = pipeline.EvalInputs(
        frame=train,
        tokenizer=None,
        root=Path("."),
        test=test,
        references=["x"] * 3,
        labels=test,
        und=und,
        und_set="the paper's understanding test set",
        _rows={"train": train, "test": test},
    )
    for side in (8, size):  # Table 2's two images at the ViT and the encoder sizes
        inputs._images[("understanding", side, 0)] = torch.zeros(2, 1, side, side)
    inputs._images[("train", size, 0)] = torch.zeros(4, 1, size, size)
    features = SimpleNamespace(image_features=lambda x: np.eye(len(x), 4, dtype=np.float32))
    encoders = pipeline.Encoders(features, features, pd.DataFrame(), {})  # no feature cache
    u = pipeline.understanding(model, inputs, encoders, s)
    assert seen == {"n": 2, "prompt": und["prompt"].tolist()}
    assert u["test_set"] == "the paper's understanding test set"
    assert all(len(texts) == 2 for texts in u["methods"].values())
    f1 = u["scores"].loc["UniX (this run)", "micro14_upos"]
    # against Table 2's references: cardiomegaly found (tp), the effusion missed (fn) and
    # "no acute process" labelled No Finding (fp): 2 tp / (2 tp + fp + fn)
    assert f1 == pytest.approx(0.5)
