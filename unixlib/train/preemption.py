"""Preemption: a scheduler's signal ends a training run with a checkpoint at the step reached.

Clusters stop a job with a signal some time before they kill it: SLURM sends SIGTERM on
preemption and, asked with ``--signal=B:USR1@300``, a chosen signal 300 s before the time
limit; Kubernetes sends SIGTERM and waits ``terminationGracePeriodSeconds``. The trainer listens
to ``TrainConfig.preempt_signals`` (default SIGTERM and SIGUSR1) on every rank:

1. the handler only records the signal (:class:`StopRequest`): the step in flight goes on;
2. after each optimizer step the ranks agree whether any of them was signalled
   (:func:`agreed`: one all-reduce of one number). It takes the place of the barrier the loop
   already had after every step, so agreeing costs nothing extra (two gloo CPU processes,
   measured: the all-reduce 0.22 ms against the barrier's 0.35 ms on an idle two-core machine,
   0.36-0.39 ms against 0.41-0.50 ms on a loaded one);
3. every rank then takes part in the checkpoint of that same step (FSDP's sharded checkpoints
   need all ranks); rank 0 logs one line and writes ``<run_dir>/preempted.json``; ``train``
   raises :class:`Preempted`;
4. the command line exits with :data:`PREEMPTED_STATUS`, 75 (``EX_TEMPFAIL`` of sysexits.h, "a
   temporary failure: retry"): the work is saved and the same command with ``--resume``
   continues exactly. A status of its own (not 0 "finished", not 1 "failed") lets a job script
   or a Kubernetes ``podFailurePolicy`` requeue exactly the runs that were preempted.

A signal during setup stops the run after its first step; one after the last step (while
``final/`` is exported) lets the run finish: its last checkpoint is already written.

torchrun answers with a status of its own (1 whenever a worker exits non-zero or it was
signalled itself), so a job script learns of the preemption from the signal it trapped or
from ``preempted.json`` (see ``scripts/slurm/train_paper.sbatch``). torchrun passes on to its
workers only the signals of ``--signals-to-handle``: :func:`torchrun_signals`.

Standard library only at import: the series runner uses :func:`forward` without torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from unixlib.train.distributed import DistInfo

PREEMPTED_STATUS = 75  # os.EX_TEMPFAIL on POSIX
DEFAULT_SIGNALS = ("SIGTERM", "SIGUSR1")  # TrainConfig.preempt_signals (see train/config.py)
MARKER = "preempted.json"  # <run_dir>/preempted.json: the last run stopped by a signal
# What torchrun handles by default; a trainer's preemption signals are added to them.
TORCHRUN_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")


def signal_numbers(names: Iterable[str]) -> list[signal.Signals]:
    """``["SIGTERM", "SIGUSR1"]`` -> the signals; an unknown or uncatchable name is an error."""
    out = []
    for name in names:
        sig = getattr(signal, str(name), None)
        if not isinstance(sig, signal.Signals) or sig in (signal.SIGKILL, signal.SIGSTOP):
            raise ValueError(
                f"preempt_signals: {name!r} is not a signal a process can catch "
                "(e.g. SIGTERM, SIGUSR1)"
            )
        out.append(sig)
    return out


def torchrun_signals(names: Sequence[str]) -> str:
    """``--signals-to-handle`` for torchrun: its defaults plus the trainer's ``names``."""
    return ",".join(dict.fromkeys([*TORCHRUN_SIGNALS, *names]))


class StopRequest:
    """Which preemption signal arrived first (None: none yet). The signal handler itself."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        # Only a flag: a handler runs between two bytecodes of whatever the main thread was
        # doing (a backward, a checkpoint write), where nothing else is safe.
        if self.signum is None:
            self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextlib.contextmanager
def listen(names: Sequence[str], log: Callable[[str], None] = print) -> Iterator[StopRequest]:
    """Record the signals ``names`` in the yielded :class:`StopRequest` for the duration; the
    previous handlers come back after. Python handles signals in the main thread only: a run
    started in another thread is not stopped by them (one line says so)."""
    request = StopRequest()
    if not names:
        yield request
        return
    if threading.current_thread() is not threading.main_thread():
        log(f"{', '.join(names)} not handled: training runs outside the main thread")
        yield request
        return
    previous = {sig: signal.signal(sig, request) for sig in signal_numbers(names)}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank: the same answer on every rank. A collective: all
    ranks call it at the same point (it synchronises them, as a barrier would)."""
    if not info.enabled:
        return flag
    import torch

    from unixlib.train.distributed import all_reduce_sum

    return bool(all_reduce_sum(torch.tensor([float(flag)], device=device), info).item() > 0)


def agreed(request: StopRequest, info: DistInfo, device: torch.device) -> str:
    """The name of the preemption signal any rank received ("" for none; the highest number
    when ranks got different ones): the same on every rank, which all call it after each step
    (one all-reduce; it synchronises them as a barrier would)."""
    signum = request.signum or 0
    if info.enabled:
        import torch
        import torch.distributed as dist

        value = torch.tensor([signum], dtype=torch.int64, device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        signum = int(value.item())
    return signal.Signals(signum).name if signum else ""


class Preempted(Exception):
    """Training stopped on a signal after a checkpoint of the step reached (see the module
    docstring). ``str()`` is the one line the loop logs; :meth:`parse` reads it back."""

    PATTERN = re.compile(
        r"stage (\d+) preempted by (\w+) after step (\d+)/(\d+): checkpoint (.+?) written;"
    )

    def __init__(self, stage: int, step: int, steps: int, checkpoint: str, signal_name: str):
        self.stage, self.step, self.steps = stage, step, steps
        self.checkpoint, self.signal_name = checkpoint, signal_name
        super().__init__(
            f"stage {stage} preempted by {signal_name} after step {step}/{steps}: checkpoint "
            f"{checkpoint} written; continue with the same command and --resume (a notebook "
            f"series: reproduce --from NN --resume); exit status {PREEMPTED_STATUS}"
        )

    def record(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "step": self.step,
            "steps": self.steps,
            "checkpoint": self.checkpoint,
            "signal": self.signal_name,
        }

    def write(self, run_dir: Path) -> None:
        """``<run_dir>/preempted.json`` (read by :meth:`read` after a torchrun, and by job
        scripts); a new run of the directory removes it (:func:`clear`)."""
        (run_dir / MARKER).write_text(json.dumps(self.record(), indent=1) + "\n")

    @classmethod
    def read(cls, run_dir: Path) -> Preempted | None:
        path = run_dir / MARKER
        if not path.is_file():
            return None
        r = json.loads(path.read_text())
        return cls(r["stage"], r["step"], r["steps"], r["checkpoint"], r["signal"])

    @classmethod
    def parse(cls, text: str) -> Preempted | None:
        """The exception back from its message (e.g. a notebook's error value), else None."""
        m = cls.PATTERN.search(text)
        if m is None:
            return None
        stage, name, step, steps, checkpoint = m.groups()
        return cls(int(stage), int(step), int(steps), checkpoint, name)


def clear(run_dir: Path) -> None:
    """Remove an earlier run's ``preempted.json`` (a run starting on ``run_dir``)."""
    (run_dir / MARKER).unlink(missing_ok=True)


@contextlib.contextmanager
def forward(names: Sequence[str], targets: Callable[[], Iterable[int]]) -> Iterator[list[str]]:
    """Pass the signals ``names`` this process receives on to the processes ``targets()``
    (e.g. a notebook kernel, a torchrun launcher) instead of dying of them; the yielded list
    collects the names received. Outside the main thread nothing is installed."""
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        for pid in targets():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    previous = {sig: signal.signal(sig, handler) for sig in signal_numbers(names)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
