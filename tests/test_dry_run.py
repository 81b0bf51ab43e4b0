"""``reproduce --dry-run`` on fixture directories shaped like the real downloads (Janus-Pro-1B,
the official UniX checkpoint, MIMIC-CXR-JPG with the test annotation CSV; full shapes, no data)
and on a broken layout, where every problem is listed at once with what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.paper_fixtures import (
    TEST_STUDIES,
    write_evaluators,
    write_janus_pro,
    write_kl_f16_vae,
    write_mimic_cxr_jpg,
    write_unix_release,
)
from unixlib.cli.main import main
from unixlib.data.sources.mimic import candidates


def _evaluator_sets(tmp: Path, notebooks: tuple[str, ...]) -> list[str]:
    """Every evaluator path of the profile, onto tiny copies in each package's format."""
    paths = write_evaluators(tmp / "evaluators")
    sets = []
    for nb in notebooks:
        for key, path in paths.items():
            if nb == "05_evaluate" or key in (
                "raddino_dir",
                "chexbert_checkpoint",
                "chexbert_bert_dir",
            ):
                sets.append(f"{nb}.{key}={path}")
    return sets


def _mimic_args(mimic: Path) -> dict[str, str]:
    return {
        "root": str(mimic),
        "test_annotations": str(mimic / "LLAVARAD_ANNOTATIONS_TEST.csv"),
        "gen_annotations": str(mimic / "LLAVARAD_ANNOTATIONS_TRAIN.csv"),
        "understanding_test": str(mimic / "test_data.json"),
    }


def _paper_sets(tmp: Path, janus: Path, mimic: Path) -> list[str]:
    vae = write_kl_f16_vae(tmp / "vae")
    sets = _evaluator_sets(tmp, ("05_evaluate", "06_ablations"))
    rad = tmp / "evaluators" / "rad-dino"
    return [
        *sets,
        f"01_clean_data.tokenizer_dir={janus}",
        f"02_train_ar.janus_dir={janus}",
        f"03_train_diffusion.vae_dir={vae}",
        f"03_train_diffusion.repa_encoder={rad}",
        f"01_clean_data.source_args={json.dumps(_mimic_args(mimic))}",
        "01_clean_data.llm_cleaning=off",
    ]


def _run(profile: str, sets: list[str], capsys, *extra: str) -> tuple[int, str]:
    args = ["reproduce", "--profile", profile, "--dry-run", *extra]
    for s in sets:
        args += ["--set", s]
    rc = main(args)
    return rc, capsys.readouterr().out


def test_paper_profile_passes_on_the_real_layouts(tmp_path: Path, capsys) -> None:
    sets = _paper_sets(
        tmp_path,
        write_janus_pro(tmp_path / "Janus-Pro-1B"),
        write_mimic_cxr_jpg(tmp_path / "mimic"),
    )
    rc, out = _run("paper", sets, capsys, "--gpus", "8", "--gpu-memory-gb", "48")
    assert rc == 0, out
    assert "Janus-Pro -> stage-1 model" in out and "shapes match (meta device)" in out
    assert "VAE kl-f16 (meta device)" in out and "tokenizer vs Janus-Pro embedding" in out
    assert "tokenizer needs 102400 rows (ids up to 100580); 102400 rows" in out
    assert "[FAIL]" not in out
    assert out.count("memory per GPU (estimate)") == 3


def _release_sets(tmp: Path) -> tuple[list[str], Path]:
    """The release-eval overrides onto fixture copies of every download, and the MIMIC root
    (its ``test_data.json`` stands for the release's eval/data/understanding/ file)."""
    release = write_unix_release(tmp / "UniX")
    mimic = write_mimic_cxr_jpg(tmp / "mimic")
    args = _mimic_args(mimic)
    del args["gen_annotations"]  # nothing is trained
    sets = [
        *_evaluator_sets(tmp, ("05_evaluate",)),
        f"release_dir={release}",
        f"vae_dir={release / 'vae' / 'kl-f16d16.ckpt'}",
        f"01_clean_data.tokenizer_dir={release}",
        f"01_clean_data.source_args={json.dumps(args)}",
    ]
    return sets, mimic


def test_release_eval_passes_on_the_release_layout(tmp_path: Path, capsys) -> None:
    sets, _ = _release_sets(tmp_path)
    rc, out = _run("release-eval", sets, capsys, "--gpus", "1", "--gpu-memory-gb", "40")
    assert rc == 0, out
    assert "UniX release -> paper model (+ VAE)" in out and "test annotations" in out
    assert "[ok  ] understanding test set: 2 image-report pairs, 2 distinct prompts" in out
    assert out.count("loads the official weights (no training)") == 3


def test_release_eval_fails_without_the_understanding_test_set(tmp_path: Path, capsys) -> None:
    sets, mimic = _release_sets(tmp_path)
    (mimic / "test_data.json").unlink()
    rc, out = _run("release-eval", sets, capsys, "--gpus", "1", "--gpu-memory-gb", "40")
    assert rc == 1
    tail = out.split("1 problem(s); nothing was run:")[1]
    assert "01_clean_data.source_args.understanding_test: the paper's understanding test" in tail
    assert "eval/data/understanding/test_data.json of the official repository" in tail


def test_release_eval_fails_on_a_malformed_understanding_test_set(tmp_path: Path, capsys) -> None:
    sets, mimic = _release_sets(tmp_path)
    entries = json.loads((mimic / "test_data.json").read_text())
    del entries[1]["images"]
    (mimic / "test_data.json").write_text(json.dumps(entries))
    rc, out = _run("release-eval", sets, capsys, "--gpus", "1", "--gpu-memory-gb", "40")
    assert rc == 1
    assert "[FAIL] understanding test set:" in out and "test_data.json: entry 1: no 'images'" in out


def test_broken_layout_lists_every_problem_with_a_fix(tmp_path: Path, capsys) -> None:
    janus = write_janus_pro(tmp_path / "J", drop="language_model.model.layers.7.mlp.up_proj.weight")
    mimic = write_mimic_cxr_jpg(tmp_path / "mimic")
    (mimic / "mimic-cxr-2.0.0-split.csv").unlink()
    sets = _paper_sets(tmp_path, janus, mimic)
    shutil.rmtree(tmp_path / "evaluators" / "rad-dino")
    rc, out = _run("paper", sets, capsys, "--gpus", "4", "--gpu-memory-gb", "16")
    assert rc == 1
    tail = out.split("problem(s); nothing was run:")[1]
    for needle in (
        "layers.7.und.mlp.up_proj.weight",  # the missing key, named
        "mimic-cxr-2.0.0-split.csv",
        "rad-dino",
        "stage 1 GPUs",
        "stage 2 memory",
    ):
        assert needle in out, needle
    assert "MIMIC mimic-cxr-2.0.0-split.csv: from mimic-cxr-jpg" in tail
    assert "stage 2 memory: lower 03_train_diffusion.batch_size" in tail
    assert "02_train_ar.janus_dir" not in tail  # the directory exists; its content is the issue


def test_a_bad_parameter_is_reported_without_running(capsys) -> None:
    rc, out = _run("smoke", ["02_train_ar.steps=many"], capsys)
    assert rc == 1 and "steps" in out and "must be int" in out


def test_smoke_needs_nothing(capsys) -> None:
    rc, out = _run("smoke", [], capsys, "--gpus", "0")
    assert rc == 0, out


def test_mimic_source_reads_the_test_annotations(tmp_path: Path) -> None:
    mimic = write_mimic_cxr_jpg(tmp_path / "mimic")
    ann = mimic / "LLAVARAD_ANNOTATIONS_TEST.csv"
    rows = {c.id: c for c in candidates(mimic, test_annotations=ann)}
    annotated, other = (study[2] for study in TEST_STUDIES)
    assert rows[annotated].split == "test"
    assert rows[annotated].report_raw == "FINDINGS: Mild cardiomegaly."
    assert rows[other].reject == "not in the test annotations"
    train = [c for c in rows.values() if c.split == "train"]
    assert train and all(c.reject is None for c in train)
    ann.write_text("path,annotated_prompt\nfiles/p99/p99/s1/nope.jpg,x\n")
    with pytest.raises(ValueError, match=r"not in mimic-cxr-2\.0\.0-metadata\.csv"):
        list(candidates(mimic, test_annotations=ann))
