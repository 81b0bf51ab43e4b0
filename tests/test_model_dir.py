"""Model directories (save_pretrained / from_pretrained), and using one: describe, draw, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from PIL import Image
from safetensors.torch import load_file, save_file
from test_dicom import write_dicom
from train_helpers import data_run, tiny_config

from unixlib.cli.main import main
from unixlib.data.processed import load_processed
from unixlib.data.sources.images import save_png8
from unixlib.data.text.tokenizer import ReportTokenizer
from unixlib.experiments.export import export_run
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
        (["describe", "--model", "{model}", "{tmp}/broken.png"], "broken.png: unreadable"),
        (["describe", "--model", "{model}", "{tmp}/absent.png"], "absent.png: file not found"),
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
