"""The dry run's evaluation-protocol checks (issue 22): the test files it lists, each evaluator
(which one, its weights, its input resolution) on tiny copies in each package's own format,
LLM cleaning, and a broken layout where every problem is listed at once."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.paper_fixtures import write_janus_pro, write_mimic_cxr_jpg
from tests.test_dry_run import _paper_sets, _release_sets, _run

PAPER_MACHINE = ("--gpus", "8", "--gpu-memory-gb", "48")


def _paper(tmp_path: Path) -> list[str]:
    return _paper_sets(
        tmp_path, write_janus_pro(tmp_path / "Janus-Pro-1B"), write_mimic_cxr_jpg(tmp_path / "m")
    )


def _line(out: str, item: str) -> str:
    """The report line of ``item``."""
    return next(line for line in out.splitlines() if line.startswith(f"[ok  ] {item}:"))


def test_paper_lists_test_files_and_every_evaluator_with_its_resolution(tmp_path, capsys) -> None:
    rc, out = _run("paper", _paper(tmp_path), capsys, *PAPER_MACHINE)
    assert rc == 0, out
    assert "LLAVARAD_ANNOTATIONS_TEST.csv: 1 report-image pairs" in _line(
        out, "test set, Tables 3-4"
    )
    assert "test_data.json" in _line(out, "test set, Table 2")
    assert "1 image-prompt pairs" in _line(out, "generation training set")
    assert _line(out, "05_evaluate labeler").startswith("[ok  ] 05_evaluate labeler: CheXbert: ")
    assert "F1 partial" in _line(out, "05_evaluate RadGraph F1")
    features = _line(out, "05_evaluate image features")
    assert "RadDino: " in features and "299 x 299 (bilinear) -> 32 px bicubic, crop 28" in features
    assert "real images read at 512 px, generated 512" in features
    assert "images 512 px -> crop 448" in _line(out, "05_evaluate alignment: BioViL-T")
    decoding = _line(out, "05_evaluate decoding")
    assert "at most 499 new tokens" in decoding and "cut at none ids" in decoding
    assert "sampling in bf16" in decoding
    assert "CheXbert" in _line(out, "06_ablations labeler")  # notebook 06 labels with it too
    assert "off: rules only; every table says rule-cleaned" in _line(out, "LLM cleaning")


def test_paper_without_an_llm_endpoint_fails_unless_cleaning_is_off(tmp_path, capsys) -> None:
    sets = [s for s in _paper(tmp_path) if not s.startswith("01_clean_data.llm_cleaning")]
    rc, out = _run("paper", sets, capsys, *PAPER_MACHINE)
    assert rc == 1
    tail = out.split("problem(s); nothing was run:")[1]
    assert "LLM cleaning: set 01_clean_data.llm_base_url and llm_model" in tail
    assert "--set 01_clean_data.llm_cleaning=off" in tail
    endpoint = ["01_clean_data.llm_base_url=http://llm/v1", "01_clean_data.llm_model=deepseek-chat"]
    env = "UNIX_LLM_API_KEY_FOR_A_TEST"
    rc, out = _run(
        "paper", [*sets, *endpoint, f"01_clean_data.llm_api_key_env={env}"], capsys, *PAPER_MACHINE
    )
    assert rc == 1 and f"deepseek-chat at http://llm/v1, but ${env} is empty" in out


def test_release_eval_feeds_as_the_release(tmp_path, capsys) -> None:
    sets, _ = _release_sets(tmp_path)
    rc, out = _run("release-eval", sets, capsys, "--gpus", "1", "--gpu-memory-gb", "40")
    assert rc == 0, out
    decoding = _line(out, "05_evaluate decoding")
    assert "at most 499 new tokens" in decoding and "Table 2 images: release" in decoding
    assert "generated images scored release" in decoding


def test_broken_evaluators_are_all_listed_with_their_fixes(tmp_path, capsys) -> None:
    sets = _paper(tmp_path)
    ev = tmp_path / "evaluators"
    ckpt = torch.load(ev / "chexbert" / "chexbert.pth", weights_only=True)
    del ckpt["model_state_dict"]["module.linear_heads.3.bias"]
    torch.save(ckpt, ev / "chexbert" / "chexbert.pth")
    (ev / "BiomedVLP-BioViL-T" / "biovil_t_image_model_proj_size_128.pt").unlink()
    (ev / "radgraph" / "radgraph" / "weights.th").write_bytes(b"not a torch file")
    small = ["05_evaluate.real_image_size=256", "06_ablations.real_image_size=256"]
    rc, out = _run("paper", [*sets, *small], capsys, *PAPER_MACHINE)
    assert rc == 1
    tail = out.split("problem(s); nothing was run:")[1]
    assert "05_evaluate labeler: chexbert.pth from stanfordmlgroup/CheXbert" in tail
    assert "06_ablations labeler: chexbert.pth" in tail
    assert "05_evaluate alignment: a local copy of huggingface.co/microsoft/BiomedVLP" in tail
    assert "05_evaluate RadGraph F1: radgraph.tar.gz" in tail
    assert "05_evaluate real image size: --set 05_evaluate.real_image_size=0" in tail
    assert "06_ablations real image size" in tail
    assert "linear_heads.3.bias" in out  # the missing key, named
    assert "6 problem(s)" in out
