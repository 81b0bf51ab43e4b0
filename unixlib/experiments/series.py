"""The papermill series runner: ``python -m unixlib reproduce --profile NAME``.

Executes ``notebooks/NN_*.ipynb`` in order with the profile's parameters into
``papermill_runs/<profile>/`` (figures and tables land in ``figures/<profile>/``, written by the
notebooks through :mod:`unixlib.viz`), and records ``manifest.json``: git commit, profile,
resolved parameters, package versions, device, seed, each notebook's status and wall time, and
the figure files this run wrote. A run of some notebooks (``--only`` / ``--from``) merges its
entries into the existing manifest instead of replacing it. It stops at the first failing
notebook, naming the notebook and the cell, and leaves earlier outputs in place.

A preemption signal (SIGTERM, SIGUSR1) to the runner is passed on to the running kernel: a
training notebook then stops after a checkpoint of the step reached (train/preemption.py), its
entry is recorded as ``interrupted`` with the stage and step, and the series stops with
:data:`INTERRUPTED_STATUS`; ``--from NN --resume`` continues that stage from its checkpoint.

Kernels talk to the runner over IPC sockets in a private temporary folder (no TCP port, so no
unencrypted-transport warning), and run with ``UNIXLIB_PROGRESS=quiet``: progress bars and step
logs go to ``<run_dir>/progress.log`` (which ``log_output`` streams to the terminal), so the
executed notebooks read as documents. This module orchestrates only: it imports
neither the model nor training (train/preemption.py is standard library only).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unixlib import config
from unixlib.experiments.kernels import PROGRESS_LOG, kernel_environment, tailing
from unixlib.experiments.manifest import (
    NotebookRun,
    _document_warnings,
    _write_manifest,
    git_state,
    output_counts,
)
from unixlib.train import preemption
from unixlib.train.runlock import RunLock


class SeriesError(RuntimeError):
    """A notebook of the series failed; the message names it and the failing cell."""


class SeriesInterrupted(SeriesError):
    """A preemption signal stopped the series; the message says how to continue."""


INTERRUPTED_STATUS = preemption.PREEMPTED_STATUS  # the CLI's exit status for it (75)


def select(stems: list[str], only: list[str] | None = None, start: str | None = None) -> list[str]:
    """Pick notebooks by two-digit prefix or full stem: ``only=["01", "03"]``, ``start="02"``."""

    def match(token: str) -> str:
        hits = [s for s in stems if s == token or s.split("_", 1)[0] == token.zfill(2)]
        if len(hits) != 1:
            raise SeriesError(f"{token!r} names no notebook of the series ({', '.join(stems)})")
        return hits[0]

    chosen = stems
    if start is not None:
        chosen = chosen[stems.index(match(start)) :]
    if only:
        wanted = {match(t) for t in only}
        chosen = [s for s in chosen if s in wanted]
    return chosen


def _stop_unless_ok(run: NotebookRun, profile: str) -> None:
    """Raise at a notebook that did not finish: interrupted (how to continue) or failed."""
    if run.status == "interrupted":
        again = f"--from {run.notebook.split('_', 1)[0]}"
        again += " --resume" if run.stage is not None else ""
        raise SeriesInterrupted(
            f"{run.notebook} interrupted: {run.error}; continue the series with: "
            f"python -m unixlib reproduce --profile {profile} {again}"
        )
    if run.status != "ok":
        raise SeriesError(run.error)


@dataclass
class _Series:
    """What every notebook of one series run shares."""

    profile: config.Profile
    out_dir: Path
    notebook_dir: Path
    progress: bool
    log_output: bool
    kernel_args: dict
    commit: str | None
    prepare_only: bool
    signals: list[str]  # preemption signals received (and passed on to the kernel)


def _run_one(pm, series: _Series, stem: str, label: str) -> NotebookRun:
    """Execute one notebook of the series (``label``: "[i/n]"); a failure is returned as a
    ``failed`` run, ``prepare_only`` writes the parameterized notebook without executing it."""
    out = series.out_dir / f"{stem}.ipynb"
    print(f"{label} {stem} -> {config.shown(out)}", flush=True)
    streams = {"stdout_file": sys.stdout, "stderr_file": sys.stderr} if series.log_output else {}
    tail = series.log_output and not series.prepare_only  # the kernels' progress.log
    t1 = time.time()
    try:
        with tailing(series.out_dir / PROGRESS_LOG, tail):
            pm.execute_notebook(
                str(series.notebook_dir / f"{stem}.ipynb"),
                str(out),
                parameters=series.profile.for_notebook(stem),
                cwd=str(config.REPO_ROOT),
                kernel_name="python3",
                progress_bar=series.progress and not series.log_output,
                log_output=False,  # streams go to the files above, not through logging
                prepare_only=series.prepare_only,
                **streams,
                **series.kernel_args,
            )
    except Exception as err:  # a failed cell, or a kernel that died of a passed-on signal
        wall = round(time.time() - t1, 2)
        stopped = _interrupted(err, series.signals)
        if stopped is not None:
            msg, stage, step = stopped
            return NotebookRun(
                stem, "interrupted", wall, str(out), msg, t1, series.commit, stage=stage, step=step
            )
        if not isinstance(err, pm.PapermillExecutionError):
            raise
        msg = f"{stem} failed in cell {err.cell_index} ({err.ename}: {err.evalue}); see {out}"
        return NotebookRun(stem, "failed", wall, str(out), msg, t1, series.commit)
    wall = round(time.time() - t1, 2)
    if series.prepare_only:
        return NotebookRun(stem, "prepared", wall, str(out), None, t1, series.commit)
    counts = output_counts(out)
    for warning in _document_warnings(stem, counts):
        print(f"    warning: {warning}", flush=True)
    return NotebookRun(stem, "ok", wall, str(out), None, t1, series.commit, outputs=counts)


def _interrupted(
    err: BaseException, signals: list[str]
) -> tuple[str, int | None, int | None] | None:
    """(message, stage, step) when ``err`` ended a notebook because of a preemption signal: the
    training loop's ``Preempted`` (its message carries stage and step), or any failure after
    the runner passed a signal on (a kernel outside training dies of it); else None."""
    if getattr(err, "ename", "") == "Preempted":
        stopped = preemption.Preempted.parse(str(getattr(err, "evalue", "")))
        if stopped is not None:
            return (
                f"stage {stopped.stage} stopped by {stopped.signal_name} after step "
                f"{stopped.step}/{stopped.steps} ({stopped.checkpoint} written)",
                stopped.stage,
                stopped.step,
            )
    if signals:
        return f"stopped by {signals[0]} ({type(err).__name__}: {err})", None, None
    return None


def _kernels() -> list[int]:
    """The runner's child processes: the notebook kernel (psutil comes with IPython)."""
    import psutil

    return [child.pid for child in psutil.Process().children()]


def _resume_first(profile: config.Profile, stem: str, manifest: Path) -> None:
    """Make the series' first notebook ``stem`` continue its training stage (``resume``
    parameter of notebooks 02-04); say what the manifest recorded for it."""
    if "resume" not in profile.params[stem]:
        raise SeriesError(f"--resume: {stem} trains no stage to continue (02, 03 and 04 do)")
    profile.params[stem]["resume"] = True
    profile.overridden.setdefault(stem, {})["resume"] = True
    entries = json.loads(manifest.read_text()).get("notebooks", []) if manifest.is_file() else []
    entry = next((e for e in entries if e["notebook"] == stem), None)
    if entry is None:
        print(
            f"{stem}: no earlier run in the manifest; --resume starts it at its newest checkpoint"
        )
    elif entry["status"] == "interrupted":
        print(
            f"{stem}: interrupted at stage {entry.get('stage')} step {entry.get('step')}; resuming"
        )
    else:
        print(f"{stem}: recorded as {entry['status']}; resuming from its newest checkpoint")


def reproduce(
    profile_name: str,
    only: list[str] | None = None,
    start: str | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    notebook_dir: Path = config.NOTEBOOK_DIR,
    profile_dir: Path = config.PROFILE_DIR,
    log_output: bool = False,
    prepare_only: bool = False,
    resume: bool = False,
) -> list[NotebookRun]:
    """Run the series for one profile. Raises :class:`SeriesError` at the first failure, and
    :class:`SeriesInterrupted` when a preemption signal stopped a notebook (module docstring).

    ``only`` / ``start`` pick notebooks (see :func:`select`) and merge into the run's existing
    ``manifest.json``; ``overrides`` are ``[NB.]KEY=VALUE`` strings that win over the profile
    file; ``log_output`` streams each notebook's stdout and stderr (progress bars included) to
    this process's as the cells print them. ``prepare_only`` writes each notebook with its
    injected parameters to the run directory and executes nothing (no manifest): what
    ``make test`` hands to nbval. ``resume`` (with ``start``) continues the first notebook's
    training stage from its newest intact checkpoint; the notebooks after it start afresh.
    """
    import papermill as pm  # heavy import, only when running

    profile = config.load(
        profile_name, overrides, profile_dir=profile_dir, notebook_dir=notebook_dir
    )
    stems = select([p.stem for p in config.notebooks(notebook_dir)], only, start)
    if resume and start is None:
        raise SeriesError("--resume continues the notebook given by --from NN")
    first = profile.params[stems[0]] if stems else {}
    out_dir = config.project_path(first.get(config.RUN_DIR_KEY, f"papermill_runs/{profile_name}"))
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "manifest.json"
    if resume and stems:
        _resume_first(profile, stems[0], manifest)
    lock = RunLock(out_dir).acquire()  # a second series (or train) on out_dir stops here
    profile.save(out_dir / "profile_resolved.json")
    previous = None
    if (only or start) and manifest.is_file():
        previous = json.loads(manifest.read_text())
    print(
        f"profile {profile.name!r}: {profile.description}\nnotebooks: {', '.join(stems)}",
        flush=True,
    )
    t0 = time.time()
    try:
        runs = _execute(
            pm, profile, stems, out_dir, notebook_dir, progress, log_output, prepare_only, previous
        )
    finally:
        lock.release()
    if prepare_only:
        print(f"{len(runs)} parameterized notebooks in {config.shown(out_dir)} (not executed)")
        return runs
    print(f"done in {time.time() - t0:.1f} s; manifest: {config.shown(manifest)}")
    return runs


def _execute(
    pm,
    profile: config.Profile,
    stems: list[str],
    out_dir: Path,
    notebook_dir: Path,
    progress: bool,
    log_output: bool,
    prepare_only: bool,
    previous: dict[str, Any] | None,
) -> list[NotebookRun]:
    """Run the notebooks ``stems`` in order, writing the manifest after each; stop at the
    first that did not finish, or at a preemption signal between two notebooks."""
    t0, runs = time.time(), []
    manifest = out_dir / "manifest.json"
    with (
        kernel_environment(out_dir) as kernel_args,
        preemption.forward(preemption.DEFAULT_SIGNALS, _kernels) as signals,
    ):
        commit = git_state()["commit"]
        series = _Series(
            profile,
            out_dir,
            notebook_dir,
            progress,
            log_output,
            kernel_args,
            commit,
            prepare_only,
            signals,
        )
        for i, stem in enumerate(stems, 1):
            runs.append(_run_one(pm, series, stem, f"[{i}/{len(stems)}]"))
            if prepare_only:
                continue
            _write_manifest(manifest, profile, runs, t0, previous)
            _stop_unless_ok(runs[-1], profile.name)
            print(f"    ok in {runs[-1].wall_s:.1f} s", flush=True)
            if signals and i < len(stems):  # a signal between two notebooks
                raise SeriesInterrupted(
                    f"stopped by {signals[0]} after {stem}; continue the series with: "
                    f"python -m unixlib reproduce --profile {profile.name} "
                    f"--from {stems[i].split('_', 1)[0]}"
                )
    return runs
