"""unixlib.bench: the quick CPU benchmarks' output schema, the GPU path's CPU-side errors, flags.

No timing assertions: only that every benchmark ran, reported positive finite seconds and a
ratio equal to baseline / candidate, and said what it compared.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from unixlib import bench
from unixlib.data.packing import PAD_CODE
from unixlib.model.config import preset
from unixlib.model.unix import parameter_counts
from unixlib.train import precision


def test_quick_cpu_benchmarks_print_one_json_line_each(capsys):
    results = bench.main(["--quick"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line) for line in lines] == results
    assert [r["name"] for r in results] == list(bench.CPU_BENCHMARKS)
    for r in results:
        for key in ("baseline_s", "candidate_s", "ratio"):
            assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, (r, key)
        assert r["ratio"] == pytest.approx(r["baseline_s"] / r["candidate_s"])
        assert r["repeats"] == 1 and r["device"] == "cpu" and r["threads"] >= 1
        assert r["baseline"] and r["candidate"] and r["preset"] == "tiny"
        if r["target"] is None:
            assert r["meets_target"] is None
        else:
            assert r["meets_target"] == (r["ratio"] >= float(r["target"].split()[-1]))
    by_name = {r["name"]: r for r in results}
    assert by_name["decode_kv_cache"]["new_tokens"] == 8
    assert by_name["sample_context_reuse_L256"]["report_tokens"] == 256
    assert by_name["sample_context_reuse_L64"]["target"] is None
    assert by_name["mot_vs_dense_step"]["target"] == "ratio >= 0.769"
    peak = by_name["train_step_vs_gemm_peak"]
    assert peak["ratio"] == pytest.approx(peak["step_gflop_per_s"] / peak["gemm_gflop_per_s"])
    assert peak["precision"] == precision.describe("auto", torch.device("cpu"))
    fp32_rate = peak["gflop_per_step"] / peak["fp32_step_s"]
    assert peak["fp32_ratio"] == pytest.approx(fp32_rate / peak["gemm_gflop_per_s"])


def test_train_step_flops_count_each_part_once():
    """Generation-only batch: 6 N T through one branch + 12 L d P attention, no ViT, no CE."""
    cfg = preset("tiny")
    batch = bench.mixed_batch(cfg, n_und=0, n_gen=3, report_len=5)["batch"]
    n_branch = parameter_counts(cfg)["und_branch"]
    tokens, pairs = int(batch.lengths.sum()), bench.attended_pairs(batch)
    expected = 6 * n_branch * tokens + 12 * cfg.num_layers * cfg.hidden_size * pairs
    assert bench.train_step_flops(cfg, batch, n_vit_images=0) == expected
    und = bench.mixed_batch(cfg, n_und=1, n_gen=0, report_len=5)["batch"]
    vit = cfg.vit_grid**2
    ce = int(und.ce_index.numel())
    assert ce == 6  # the report's 5 tokens and eos
    expected = (
        6 * n_branch * (int(und.lengths.sum()) - vit)
        + 6 * parameter_counts(cfg)["vision"] * vit
        + 12 * cfg.num_layers * cfg.hidden_size * bench.attended_pairs(und)
        + 6 * cfg.hidden_size * cfg.vocab_size * ce
    )
    assert bench.train_step_flops(cfg, und, n_vit_images=1) == expected


def test_only_selects_benchmarks_in_order(capsys):
    results = bench.main(["--quick", "--only", "mot_vs_dense_step", "--repeats", "2"])
    assert [r["name"] for r in results] == ["mot_vs_dense_step"]
    assert results[0]["repeats"] == 2
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_paired_medians_alternate_and_take_medians():
    calls = []
    base, cand = bench.paired_medians(lambda: calls.append("b"), lambda: calls.append("c"), 3)
    assert calls == ["b", "c"] * 3
    assert base > 0 and cand > 0


def test_mixed_batch_has_the_requested_tasks():
    cfg = preset("tiny")
    inputs = bench.mixed_batch(cfg, n_und=2, n_gen=5, report_len=7)
    batch = inputs["batch"]
    assert batch.tasks == ["und", "und", "uncond", "gen", "gen", "gen", "gen"]  # every 5th uncond
    assert inputs["vit_pixels"].shape == (2, 3, 64, 64)
    assert inputs["latents"].shape == (5, cfg.latent_channels, 8, 8)
    assert inputs["timesteps"].shape == (5,) and inputs["noise"].shape == (5, 4, 8, 8)
    assert batch.ce_index.numel() == 2 * (7 + 1)  # report + eos per understanding sample
    und_only = bench.mixed_batch(cfg, n_und=1, n_gen=0, report_len=3)
    assert und_only["latents"] is None and und_only["noise"] is None


def test_attended_pairs_counts_real_query_key_pairs():
    cfg = preset("tiny")
    batch = bench.mixed_batch(cfg, n_und=0, n_gen=2, report_len=3)["batch"]
    # row 0 unconditional: [bos, boi] causal (1 + 2) + 64 latents seeing 2 + 64 keys each
    # row 1: [bos, 3 ids, boi] causal (15) + 64 latents seeing 5 + 64 keys each
    expected = (3 + 64 * 66) + (15 + 64 * 69)
    assert bench.attended_pairs(batch) == expected
    assert (batch.token_kind == PAD_CODE).sum() == 3  # padding exists and is excluded


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error path without CUDA")
def test_gpu_without_cuda_fails_with_a_clear_message():
    with pytest.raises(SystemExit, match=r"--gpu needs a CUDA GPU.*is_available\(\) is False"):
        bench.main(["--gpu"])


def test_argument_parsing_and_rejections(capsys):
    args = bench.parse_args(["--gpu", "--peak-tflops", "400", "--gpu-batch-512", "4"])
    assert args.gpu and args.peak_tflops == 400.0 and args.gpu_batch_512 == 4
    assert args.gpu_batch_256 == 16 and args.repeats == 3 and args.only is None
    default = bench.parse_args([])
    assert default.peak_tflops == bench.H200_BF16_DENSE_TFLOPS and not default.quick
    assert bench.parse_args(["--quick"]).repeats == 1
    for bad in (
        ["--only", "nope"],
        ["--repeats", "0"],
        ["--threads", "0"],
        ["--peak-tflops", "fast"],
    ):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
    assert "invalid choice: 'nope'" in capsys.readouterr().err
