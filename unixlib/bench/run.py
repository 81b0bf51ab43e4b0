"""The benchmark command line (``python -m unixlib.bench``); see :mod:`unixlib.bench`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch

from unixlib.bench.cpu import CPU_BENCHMARKS, run_cpu
from unixlib.bench.gpu import H100_SXM_BF16_DENSE_TFLOPS, run_gpu
from unixlib.bench.padding import IU_CSV


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags (see ``--help``)."""
    p = argparse.ArgumentParser(prog="python -m unixlib.bench", description=__doc__.split("\n")[0])
    p.add_argument(
        "--only",
        choices=CPU_BENCHMARKS,
        action="append",
        help="run only this CPU benchmark (repeatable)",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (for tests)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per side (default 3)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; 1 is steadier on shared cores)",
    )
    p.add_argument("--iu-reports", default=IU_CSV, help="IU X-ray reports CSV (paper lengths)")
    p.add_argument("--gpu", action="store_true", help="paper-preset CUDA benchmarks instead")
    p.add_argument(
        "--dry",
        action="store_true",
        help="with --gpu: print the plans (shapes, tokens, padding, kernel, memory estimate) on "
        "the CPU, no CUDA, no timing",
    )
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=H100_SXM_BF16_DENSE_TFLOPS,
        help="peak dense bf16 TFLOP/s of the GPU, for MFU (default: H100 SXM, 989.4; "
        "H200 SXM the same; H100 PCIe 756)",
    )
    p.add_argument("--gpu-batch", type=int, default=32, help="samples per stage-2 step (paper: 32)")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    if args.gpu_batch < 1:
        p.error(f"--gpu-batch must be >= 1, got {args.gpu_batch}")
    if args.dry and not args.gpu:
        p.error("--dry goes with --gpu (the CPU benchmarks have no dry mode)")
    return args


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Run the selected benchmarks and return their results (also printed, one JSON a line)."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.gpu:
        return run_gpu(args.peak_tflops, args.gpu_batch, args.repeats, args.dry)
    return run_cpu(args.only or CPU_BENCHMARKS, args.quick, args.repeats, args.iu_reports)
