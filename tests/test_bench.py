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
from unixlib.bench import padding
from unixlib.data import packing
from unixlib.data.packing import PAD_CODE, SamplePlan, SpecialTokens, Split, pack
from unixlib.model.config import preset
from unixlib.model.unix import parameter_counts
from unixlib.train import precision

TIMED = [n for n in bench.CPU_BENCHMARKS if not n.startswith(("padding_", "attention_"))]


def test_quick_cpu_benchmarks_print_one_json_line_each(capsys):
    results = bench.main(["--quick", *[a for n in TIMED for a in ("--only", n)]])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line) for line in lines] == results
    assert [r["name"] for r in results] == TIMED
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
    # each precision against its own matmul peak: bf16 step vs bf16 GEMM, fp32 vs fp32
    bf16 = precision.uses_bf16("auto", torch.device("cpu"))
    assert peak["gemm_dtype"] == ("bfloat16" if bf16 else "float32")
    if not bf16:
        assert peak["gemm_gflop_per_s"] == peak["fp32_gemm_gflop_per_s"]
    fp32_rate = peak["gflop_per_step"] / peak["fp32_step_s"]
    assert peak["fp32_ratio"] == pytest.approx(fp32_rate / peak["fp32_gemm_gflop_per_s"])
    step = by_name["packed_vs_padded_step"]
    assert step["target"] == "ratio >= 1.3" and step["packed_fraction"] == 0.0
    assert 0 < step["padded_fraction"] < 1 and "sdpa-dense" in step["baseline"]
    assert "sdpa-per-sample" in step["candidate"]


def test_gemm_peak_per_dtype():
    for dtype in (torch.float32, torch.bfloat16):
        rate = bench.cpu.gemm_flops_per_s(64, 1, dtype)
        assert math.isfinite(rate) and rate > 0


def test_attention_kernel_row_names_each_layout_and_device():
    (row,) = bench.main(["--quick", "--only", "attention_kernel"])
    assert row["cpu_packed"] == "sdpa-per-sample" and row["cpu_padded"] == "sdpa-dense"
    assert row["cuda_packed"] == "flex" and row["cuda_padded"] == "sdpa-dense"


def test_padding_fractions_of_a_hand_built_batch():
    """Samples of 3, 5 and 8 tokens: padded 3 x 8 = 24 positions (8 padding); packed 16
    (none), or 128 with CUDA's block (112 padding); the same numbers as packing's own."""
    cfg = preset("tiny")
    special = SpecialTokens.from_mapping(cfg.special_ids())
    plans = [
        SamplePlan((Split("text", tuple(range(5, 5 + n))),), i) for i, n in enumerate((3, 5, 8))
    ]
    lengths = [3, 5, 8]
    assert padding.layout_positions(lengths, packed=False) == 24
    assert padding.layout_positions(lengths, packed=True) == 16
    assert padding.layout_positions(lengths, packed=True, multiple=128) == 128
    assert padding.pooled_fraction([lengths], False) == pytest.approx(8 / 24)
    assert padding.pooled_fraction([lengths], True) == 0.0
    assert padding.pooled_fraction([lengths, lengths], True, 128) == pytest.approx(112 / 128)
    padded, packed = pack(plans, special.pad), pack(plans, special.pad, 128, packed=True)
    assert packing.padding_fraction(padded) == pytest.approx(8 / 24)
    assert packing.padding_fraction(packed) == pytest.approx(112 / 128)
    assert padding.sample_lengths(padded) == padding.sample_lengths(packed) == lengths
    with pytest.raises(ValueError, match="samples of >= 1 token"):
        padding.layout_positions([], packed=True)


def test_padding_row_pools_stages_and_checks_the_goal():
    stages = {1: [[10, 20], [30, 30]], 2: [[5, 7]]}
    row = bench.packed._padding_row("padding_fraction_x", stages, 1, preset="tiny")
    assert row["baseline_positions"] == 40 + 60 + 14 and row["candidate_positions"] == 102
    assert row["padded_fraction"] == pytest.approx(12 / 114) and row["packed_fraction"] == 0.0
    assert row["target"] == "packed_fraction < 0.05" and row["meets_target"] is True
    assert row["stages"]["1"]["padded"] == pytest.approx(10 / 100)
    assert row["stages"]["2"]["samples_per_micro_batch"] == 2


def test_paper_padding_row_reads_iu_reports(shared_data):
    (row,) = bench.main(["--quick", "--only", "padding_fraction_paper"])
    assert row["pack_multiple"] == 128 and row["report_tokens"]["max"] == 512
    assert row["report_tokens"]["n"] > 3000
    assert (
        set(row["stages"]) == {"1", "2", "3"}
        and row["stages"]["1"]["samples_per_micro_batch"] == 16
    )
    assert 0 <= row["packed_fraction"] < row["padded_fraction"] < 1


def test_paper_padding_without_the_csv_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="IU X-ray reports CSV"):
        padding.iu_report_lengths(tmp_path / "absent.csv")


def test_smoke_padding_row_builds_the_stages_micro_batches(capsys):
    (row,) = bench.main(["--quick", "--only", "padding_fraction_smoke"])
    assert [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()] == [row]
    assert set(row["stages"]) == {"1", "2", "3"} and row["pack_multiple"] == 1
    assert row["packed_fraction"] == 0.0 < row["padded_fraction"] < 1
    for stage in row["stages"].values():
        assert stage["micro_batches"] == 3 and stage["samples_per_micro_batch"] == 16
        assert stage["packed"] == 0.0 <= stage["packed_block128"] < 1


def test_gpu_dry_prints_the_plans_without_cuda(capsys):
    rows = bench.main(["--gpu", "--dry", "--gpu-batch", "4"])
    assert [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()] == rows
    names = [r["name"] for r in rows]
    assert names == [
        "gpu_train_step_packed",
        "gpu_train_step_padded",
        "gpu_sample_512px",
        "gpu_decode_kv_cache",
    ]
    packed, padded = rows[0], rows[1]
    assert packed["kernel"] == "flex" and padded["kernel"] == "sdpa-dense"
    assert packed["batch_shape"][0] == 1 and packed["batch_shape"][1] % 128 == 0
    assert padded["batch_shape"][0] == 4 and packed["tokens"] == padded["tokens"]
    assert packed["padding_fraction"] < 128 / packed["batch_shape"][1] + 1e-9
    assert packed["layers"] == 24 and packed["fits"]
    assert packed["memory_estimate_gib"] < padded["memory_estimate_gib"]
    assert packed["latent_tokens_per_image"] == 256
    assert rows[2]["latent_tokens"] == 1024 and rows[2]["steps"] == 50
    assert all(r["dry"] for r in rows)


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
    packed = bench.mixed_batch(cfg, n_und=0, n_gen=2, report_len=3, packed=True)["batch"]
    assert packed.shape[0] == 1 and bench.attended_pairs(packed) == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error path without CUDA")
def test_gpu_without_cuda_fails_with_a_clear_message():
    with pytest.raises(SystemExit, match=r"--gpu needs a CUDA GPU.*is_available\(\) is False"):
        bench.main(["--gpu"])


def test_argument_parsing_and_rejections(capsys):
    args = bench.parse_args(["--gpu", "--peak-tflops", "400", "--gpu-batch", "4"])
    assert args.gpu and args.peak_tflops == 400.0 and args.gpu_batch == 4 and not args.dry
    assert args.repeats == 3 and args.only is None
    default = bench.parse_args([])
    assert default.peak_tflops == bench.H100_SXM_BF16_DENSE_TFLOPS == 989.4
    assert default.gpu_batch == 32 and not default.quick
    assert bench.parse_args(["--quick"]).repeats == 1
    for bad in (
        ["--only", "nope"],
        ["--repeats", "0"],
        ["--threads", "0"],
        ["--peak-tflops", "fast"],
        ["--dry"],
        ["--gpu", "--gpu-batch", "0"],
    ):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
    assert "invalid choice: 'nope'" in capsys.readouterr().err
