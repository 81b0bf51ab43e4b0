"""train/precision.py: how ``mixed_precision`` resolves per device, and the bf16 RMSNorm path."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from unixlib.model.norm import RMSNorm
from unixlib.train import precision
from unixlib.train.config import TrainConfig

X86_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 fma\n"
X86_AMX = "processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n"
X86_PLAIN = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw fma\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n"
ARM_PLAIN = "processor\t: 0\nFeatures\t: fp asimd\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [(X86_BF16, True), (X86_AMX, True), (X86_PLAIN, False), (ARM_BF16, True), (ARM_PLAIN, False)],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, monkeypatch, text, expected):
    monkeypatch.setattr(precision.platform, "system", lambda: "Linux")
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    assert precision.cpu_has_native_bf16(path) is expected


def test_no_cpuinfo_means_fp32(tmp_path, monkeypatch):
    monkeypatch.setattr(precision.platform, "system", lambda: "Linux")
    assert precision.cpu_has_native_bf16(tmp_path / "missing") is False
    monkeypatch.setattr(precision.platform, "system", lambda: "Darwin")
    path = tmp_path / "cpuinfo"
    path.write_text(X86_BF16)
    assert precision.cpu_has_native_bf16(path) is False


@pytest.mark.parametrize("native", [True, False])
def test_auto_resolves_per_device(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    cpu, cuda, mps = torch.device("cpu"), torch.device("cuda", 0), torch.device("mps")
    assert precision.uses_bf16("auto", cpu) is native
    assert precision.uses_bf16("auto", cuda) is True
    assert precision.uses_bf16("auto", mps) is False
    for device in (cpu, cuda, mps):
        assert precision.uses_bf16("bf16", device) is True
        assert precision.uses_bf16("no", device) is False
    assert precision.describe("auto", cpu) == ("bf16 autocast" if native else "fp32")


def test_autocast_context_matches_the_resolution(monkeypatch):
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    for native, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda native=native: native)
        with precision.autocast("auto", torch.device("cpu")):
            assert lin(x).dtype == dtype


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        precision.uses_bf16("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="mixed_precision must be auto, bf16 or no"):
        TrainConfig(stage=1, run_dir="x", mixed_precision="fp16")


def test_rmsnorm_bf16_input_is_normalised_in_float32_without_warning():
    torch.manual_seed(0)
    norm = RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(3, 5, 16).to(torch.bfloat16).requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fused kernel's dtype-mismatch warning
        out = norm(x)
    assert out.dtype == torch.bfloat16
    ref = torch.nn.functional.rms_norm(x.float(), (16,), norm.weight, 1e-6)
    assert torch.equal(out, ref.to(torch.bfloat16))
    out.float().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16
    assert norm.weight.grad is not None and norm.weight.grad.dtype == torch.float32


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    from train_helpers import data_run

    return data_run(tmp_path_factory)


def test_bf16_training_is_finite_and_reproducible(data, tmp_path, capsys):
    """Two bf16 autocast runs of the tiny model from one seed: the same finite losses, and the
    run says which precision it trained in."""
    from train_helpers import losses, tiny_config

    from unixlib.train.loop import train

    runs = []
    for name in ("a", "b"):
        cfg = tiny_config(data, tmp_path / name, 1, steps=3, mixed_precision="bf16")
        train(cfg, progress=False)
        runs.append(losses(tmp_path / name))
    assert runs[0] == runs[1] and all(map(math.isfinite, runs[0]))
    assert "device cpu (bf16 autocast)" in capsys.readouterr().out
    assert "- precision: bf16 autocast" in (tmp_path / "a" / "final" / "README.md").read_text()
