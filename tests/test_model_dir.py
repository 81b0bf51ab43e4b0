"""Model directories (save_pretrained / from_pretrained), and using one: describe, draw, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from batch_helpers import BAD, GOOD, mixed_images
from diffusers import AutoencoderKL
from PIL import Image
from safetensors.torch import load_file, save_file
from test_dicom import write_dicom
from train_helpers import data_run, tiny_config

from unixlib.cli.common import REJECTED_STATUS
from unixlib.cli.main import main
from unixlib.data.processed import load_processed
from unixlib.data.sources.images import save_png8
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.experiments.export import export_run
from unixlib.experiments.inference import read_images
from unixlib.model import saving
from unixlib.model.card import model_card
from unixlib.model.unix import UniX
from unixlib.model.vae_files import load_vae
from unixlib.train.setup import build_model


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return data_run(tmp_path_factory)


@pytest.fixture(scope="module")
def saved(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[UniX, Path]:
    """A tiny random model (32 px both ways, a non-trivial latent norm) saved with its tokenizer."""
    _, tokenizer, _ = load_processed(data)
    cfg = tiny_config(data, tmp_path_factory.mktemp("unused"), 1)
    torch.manual_seed(0)
    model = build_model(cfg, tokenizer).eval()
    model.config.image_size_gen = 32
    model.config.vae_scale, model.config.vae_shift = 1.7, -0.25
    model.vae.scale, model.vae.shift = 1.7, -0.25
    with torch.no_grad():
        model.llm2vae.weight.normal_(std=0.02)  # not all-zero, so a dropped key would show
    out = tmp_path_factory.mktemp("model")
    card = model_card(model.config, {"stage": 3, "profile": "smoke"})
    model.save_pretrained(out, tokenizer=tokenizer, card=card)
    return model, out


def _same_weights(a: UniX, b: UniX) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_gives_identical_weights_and_outputs(saved) -> None:
    model, path = saved
    names = sorted(p.name for p in path.iterdir())
    assert names == [
        "README.md",
        "config.json",
        "model.safetensors",
        "special_tokens.json",
        "tokenizer.json",
        "vae",
    ]
    assert not any(k.startswith("vae.") for k in load_file(str(path / "model.safetensors")))
    loaded = UniX.from_pretrained(path)
    assert _same_weights(model, loaded)
    assert torch.equal(model.latent_pos_embed, loaded.latent_pos_embed)
    assert not any(t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    assert model.generate_report(images, [5, 6], 8) == loaded.generate_report(images, [5, 6], 8)
    a = model.generate_image([[5, 6, 7], []], size=32, steps=3, seed=4)
    b = loaded.eval().generate_image([[5, 6, 7], []], size=32, steps=3, seed=4)
    assert a.shape == (2, 1, 32, 32) and torch.equal(a, b)
    assert "stage: 3" in (path / "README.md").read_text()


def test_loading_runs_no_random_initialisation(saved, monkeypatch) -> None:
    """from_pretrained builds on the meta device: every init call sees a meta tensor."""
    _, path = saved
    real = []
    original = torch.nn.init.normal_

    def spy(tensor, *args, **kwargs):
        if not tensor.is_meta:
            real.append(tuple(tensor.shape))
        return original(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "normal_", spy)
    UniX.from_pretrained(path)
    assert real == []


def test_sharded_save_loads_the_same(saved, tmp_path) -> None:
    model, _ = saved
    out = model.save_pretrained(tmp_path / "m", max_shard_size="200KB")
    index = json.loads((out / saving.INDEX_FILE).read_text())
    shards = sorted(out.glob("model-*-of-*.safetensors"))
    assert len(shards) > 2 and not (out / saving.MODEL_FILE).exists()
    assert sorted(set(index["weight_map"].values())) == [p.name for p in shards]
    assert all(p.stat().st_size <= 200_000 + 10_000 for p in shards)  # + header; no big tensor
    assert _same_weights(model, UniX.from_pretrained(out))
    model.save_pretrained(out)  # re-saved unsharded: the old shards and index go
    assert sorted(p.name for p in out.glob("model*")) == ["model.safetensors"]
    assert saving.parse_size("1.5GB") == 1_500_000_000 and saving.parse_size(7) == 7
    with pytest.raises(ValueError, match="size"):
        saving.parse_size("lots")


def test_vae_dir_carries_the_latent_norm_for_diffusers(saved) -> None:
    model, path = saved
    config = json.loads((path / "vae" / "config.json").read_text())
    assert (config["scaling_factor"], config["shift_factor"]) == (1.7, -0.25)
    vae = AutoencoderKL.from_pretrained(path / "vae", local_files_only=True)
    assert (vae.config.scaling_factor, vae.config.shift_factor) == (1.7, -0.25)
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    z = vae.encode(x).latent_dist.mode()
    ours = model.vae.encode(x)
    diffusers_way = (z - vae.config.shift_factor) * vae.config.scaling_factor
    torch.testing.assert_close(ours, diffusers_way)
    wrapper = load_vae(path / "vae")  # no latent_norm.json: the config's factors are used
    assert (wrapper.scale, wrapper.shift) == (1.7, -0.25)


def test_bad_model_directories(saved, tmp_path) -> None:
    model, _ = saved
    with pytest.raises(FileNotFoundError, match="does not exist"):
        UniX.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        UniX.from_pretrained(tmp_path / "empty")
    bad = model.save_pretrained(tmp_path / "bad")
    vae_config = json.loads((bad / "vae" / "config.json").read_text())
    (bad / "vae" / "config.json").write_text(json.dumps({**vae_config, "scaling_factor": 0.18215}))
    with pytest.raises(ValueError, match="scaling_factor"):
        UniX.from_pretrained(bad)
    state = load_file(str(bad / "model.safetensors"))
    state.pop("lm_head.weight")
    save_file(state, str(bad / "model.safetensors"))
    (bad / "vae" / "config.json").write_text(json.dumps(vae_config))
    with pytest.raises(ValueError, match="lm_head"):
        UniX.from_pretrained(bad)


def test_directories_of_earlier_versions_still_load(saved, tmp_path) -> None:
    """One model.safetensors with the VAE inside and no vae/ (final/ before this layout)."""
    model, _ = saved
    old = tmp_path / "old"
    old.mkdir()
    model.config.to_json_file(str(old / "config.json"))
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(old / "model.safetensors")
    )
    assert _same_weights(model, UniX.from_pretrained(old))


def _inputs(tmp_path: Path) -> list[Path]:
    """The same synthetic radiograph as PNG, JPEG and 12-bit DICOM (non-square)."""
    yy, xx = np.mgrid[0:48, 0:40]
    img = (0.5 + 0.4 * np.sin(xx / 6.0) * np.cos(yy / 9.0)).astype(np.float32)
    png = tmp_path / "a.png"
    save_png8(img, png)
    jpg = tmp_path / "b.jpg"
    Image.fromarray((img * 255).astype(np.uint8)).convert("RGB").save(jpg, quality=95)
    dcm = write_dicom(tmp_path / "c.dcm", (img * 4095).astype(np.uint16))
    return [png, jpg, dcm]


def test_describe_png_jpeg_and_dicom_end_to_end(saved, tmp_path, capsys) -> None:
    _, path = saved
    images = _inputs(tmp_path)
    out = tmp_path / "reports.csv"
    argv = ["describe", "--model", str(path), *map(str, images), "--max-new-tokens", "12"]
    assert main([*argv, "--out", str(out), "--device", "cpu"]) == 0
    import pandas as pd

    table = pd.read_csv(out, keep_default_na=False)
    assert list(table["image"]) == [str(p) for p in images]
    assert {"report", "findings", "cardiomegaly", "no_finding"} <= set(table.columns)
    assert all(isinstance(r, str) for r in table["report"])
    assert main(argv) == 0  # to stdout
    printed = capsys.readouterr().out
    assert all(f"{p}\n  report: " in printed for p in images)


def test_draw_end_to_end(saved, tmp_path, capsys) -> None:
    _, path = saved
    csv = tmp_path / "r.csv"
    csv.write_text('report\n"Large right pleural effusion."\n')
    out = tmp_path / "drawn"
    argv = [
        "draw",
        "--model",
        str(path),
        "--report",
        "Normal chest.",
        "--reports-csv",
        str(csv),
        "--out",
        str(out),
        "--steps",
        "2",
        "--size",
        "32",
        "--seed",
        "3",
    ]
    assert main(argv) == 0
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == ["000_normal-chest.png", "001_large-right-pleural-effusion.png"]
    assert Image.open(out / files[0]).size == (32, 32) and Image.open(out / files[0]).mode == "L"
    first = np.asarray(Image.open(out / files[1]))
    assert main(argv) == 0  # the same seed draws the same image
    assert np.array_equal(first, np.asarray(Image.open(out / files[1])))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["describe", "--model", "{tmp}/missing", "{tmp}/x.png"], "does not exist"),
        (
            ["describe", "--model", "{model}", "--fail-fast", "{tmp}/broken.png"],
            "broken.png: unreadable",
        ),
        (
            ["describe", "--model", "{model}", "{tmp}/absent.png", "--fail-fast"],
            "absent.png: file not found",
        ),
        (["draw", "--model", "{model}", "--out", "{tmp}/o"], "give --report"),
        (
            ["draw", "--model", "{model}", "--report", "x", "--size", "20", "--out", "{tmp}/o"],
            "not a multiple",
        ),
        (
            ["draw", "--model", "{model}", "--reports-csv", "{tmp}/none.csv", "--out", "{tmp}/o"],
            "none.csv",
        ),
        (["model-info", "--preset", "huge"], "invalid choice: 'huge'"),
        (["train", "--profile", "nope", "--stage", "1"], "invalid choice: 'nope'"),
        (["evaluate", "--run-dir", "{tmp}/none", "--out", "{tmp}/o"], "error:"),
    ],
)
def test_user_errors_are_one_line_with_status_2(saved, tmp_path, capsys, argv, message) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    argv = [a.format(tmp=tmp_path, model=saved[1]) for a in argv]
    with pytest.raises(SystemExit) if "invalid choice" in message else _no_raise():
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err


class _no_raise:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_version_and_help(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("unixlib 0.")
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "examples:" in text and "describe" in text and "draw" in text
    with pytest.raises(SystemExit):
        main(["model-info", "--help"])
    assert "{paper,small,tiny}" in capsys.readouterr().out


def test_export_of_a_run_adds_tokenizer_and_metrics(saved, data, tmp_path) -> None:
    """An older final/ (no tokenizer, VAE inside) + the run's data and 05's summary -> a
    model directory whose card carries the metrics; describe accepts it."""
    model, _ = saved
    run = tmp_path / "run"
    (run / "stage3" / "final").mkdir(parents=True)
    (run / "data").symlink_to(data / "data")
    model.config.to_json_file(str(run / "stage3" / "final" / "config.json"))
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(run / "stage3" / "final" / "model.safetensors"),
    )
    (run / "stage3" / "config.json").write_text(json.dumps({"stage": 3, "steps": 7}))
    figures = tmp_path / "figures"
    figures.mkdir()
    summary = {
        "understanding": {"micro14_upos": 0.61},
        "faithfulness_mean": 0.9,
        "faithfulness_classes": ["edema"],
        "alignment": {"UniX stage 3": 0.4},
        "verdicts": ["beats random"],
    }
    (figures / "evaluation_summary.json").write_text(json.dumps(summary))
    resolved = {"notebooks": {"05_evaluate": {"figures_dir": str(figures)}}}
    (run / "profile_resolved.json").write_text(json.dumps(resolved))
    (run / "manifest.json").write_text(json.dumps({"profile": "smoke"}))
    out = export_run(run, 3, tmp_path / "exported")
    card = (out / "README.md").read_text()
    assert "micro14_upos (report F1 / diversity) | 0.610" in card and "profile: smoke" in card
    assert "steps: 7" in card and "- beats random" in card
    assert ReportTokenizer.load(out).vocab_size == load_processed(data)[1].vocab_size
    assert _same_weights(model, UniX.from_pretrained(out))
    with pytest.raises(FileNotFoundError, match="stage2"):
        export_run(run, 2, tmp_path / "x")


def test_training_writes_final_as_a_complete_model_directory(data, tmp_path) -> None:
    from unixlib.experiments.inference import load_model_dir
    from unixlib.train.loop import train

    result = train(tiny_config(data, tmp_path / "run", 1, steps=1), progress=False)
    names = {p.name for p in result.final_dir.iterdir()}
    assert {"config.json", "model.safetensors", "vae", "tokenizer.json", "README.md"} <= names
    card = (result.final_dir / "README.md").read_text()
    assert "- stage: 1" in card and "- train_rows: 48" in card and "- steps: 1" in card
    model, tokenizer = load_model_dir(result.final_dir, "cpu")
    assert tokenizer.vocab_size == model.config.vocab_size
    assert not (tmp_path / "run" / ".unixlib.lock").exists()  # released after the run


def test_traceback_on_request(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UNIXLIB_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["describe", "--model", str(tmp_path / "missing"), str(tmp_path / "x.png")])


def test_describe_a_mixed_folder_rejects_the_bad_files_and_describes_the_rest(
    saved, tmp_path, capsys
) -> None:
    """Good (8-bit, 16-bit, RGBA, DICOM) and bad (empty, truncated, not an image, a bomb, a
    truncated DICOM, a missing path) files in one call: the good ones are described, the bad
    ones listed in rejects.csv with their reasons, status 3; --fail-fast stops at the first."""
    _, path = saved
    files = mixed_images(tmp_path / "in")
    images = [*map(str, files.values()), str(tmp_path / "in" / "absent.png")]
    out = tmp_path / "out" / "reports.csv"
    argv = ["describe", "--model", str(path), "--max-new-tokens", "4", "--device", "cpu", *images]
    assert main([*argv, "--out", str(out)]) == REJECTED_STATUS
    table = pd.read_csv(out, keep_default_na=False)
    assert table["image"].tolist() == [str(files[name]) for name in files if name in GOOD]
    assert all(isinstance(r, str) for r in table["report"])
    rejects = pd.read_csv(out.parent / "rejects.csv", keep_default_na=False)
    assert list(rejects.columns) == ["id", "ref", "stage", "reason"]
    expected = {str(files[n]): (f"IMAGE {k + 1}", BAD[n]) for k, n in enumerate(files) if n in BAD}
    expected[images[-1]] = (f"IMAGE {len(images)}", "file not found")
    assert rejects["id"].tolist() == list(expected)  # in input order
    for row in rejects.itertuples():
        ref, reason = expected[row.id]
        assert (row.ref, row.stage) == (ref, "image") and row.reason.startswith(reason), row
    err = capsys.readouterr().err
    assert err.strip().endswith(f"6 inputs were rejected: see {out.parent / 'rejects.csv'}")

    # to the terminal: the reports on stdout, one line per rejected file on stderr
    assert main(argv) == REJECTED_STATUS
    captured = capsys.readouterr()
    assert all(f"{files[n]}\n  report: " in captured.out for n in GOOD)
    assert captured.err.count("rejected: IMAGE ") == 6 and "(0 bytes)" in captured.err

    # the 16-bit and RGBA files are the same picture as the 8-bit one once read
    pixels, kept = read_images([files[n] for n in ("gray8.png", "gray16.png", "rgba.png")], 32)
    assert kept == [0, 1, 2] and torch.allclose(pixels[1], pixels[0], atol=1 / 255)
    assert torch.equal(pixels[2], pixels[0])

    failed = tmp_path / "failed" / "reports.csv"
    assert main([*argv, "--out", str(failed), "--fail-fast"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {files['empty.png']}: empty file (0 bytes)\n"
    assert not failed.exists()  # stopped before writing anything


def test_draw_rejects_reports_it_cannot_draw_and_cuts_long_ones(saved, tmp_path, capsys):
    """--report and --reports-csv mixed: drawable reports are drawn under their input number,
    an empty / binary / letterless / header-only report and a malformed CSV row are rejected
    with their reasons, a report over --max-report-tokens is drawn from its first tokens with
    a warning; status 3. --fail-fast stops at the first bad report."""
    _, path = saved
    csv = tmp_path / "r.csv"
    csv.write_text(
        "report,seed\n"
        '"Large right pleural effusion.",1\n'  # line 2: drawn
        "Small heart.,2,extra\n"  # line 3: three fields
        ",3\n"  # line 4: empty
        '"INDICATION: cough.\nCOMPARISON: none.",4\n'  # lines 5-6: no findings
    )
    long_report = "Moderate cardiomegaly with bilateral pleural effusions. " * 30
    reports = ["Normal chest.", "", "\x00\x01\x02", "12345 678", long_report]
    out = tmp_path / "drawn"
    argv = ["draw", "--model", str(path), *(f"--report={r}" for r in reports)]
    argv += ["--reports-csv", str(csv), "--out", str(out), "--steps", "2", "--size", "32"]
    assert main([*argv, "--max-report-tokens", "30"]) == REJECTED_STATUS
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.png")) == [
        "000_normal-chest.png",
        "004_moderate-cardiomegaly-with-bilateral-ple.png",
        "005_large-right-pleural-effusion.png",
    ]
    table = pd.read_csv(out / "images.csv", keep_default_na=False)
    assert table["ref"].tolist() == ["--report 1", "--report 5", f"{csv}:2"]
    assert table["truncated"].tolist() == [False, True, False]
    assert table.loc[1, "tokens"] > 30 >= table.loc[2, "tokens"]
    assert f"warning: --report 5: a report of {table.loc[1, 'tokens']} tokens" in err
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
    assert rejects.values.tolist() == [
        ["001", "--report 2", "report", "empty report"],
        ["002", "--report 3", "report", "not text (control characters or undecodable bytes)"],
        ["003", "--report 4", "report", "not text (no letters)"],
        ["006", f"{csv}:3", "csv", "malformed CSV row (3 fields; the header has 2)"],
        ["007", f"{csv}:4", "report", "empty report"],
        ["008", f"{csv}:5", "report", "report has neither FINDINGS nor IMPRESSION content"],
    ]
    assert err.strip().endswith(f"6 inputs were rejected: see {out / 'rejects.csv'}")

    assert main([*argv, "--out", str(tmp_path / "ff"), "--fail-fast"]) == 2
    assert capsys.readouterr().err == "error: --report 2: empty report\n"
    good = ["draw", "--model", str(path), "--report", "Normal chest.", "--out", str(out)]
    assert main([*good, "--steps", "2", "--size", "32"]) == 0  # a rerun: no stale rejects
    assert pd.read_csv(out / "rejects.csv").empty
