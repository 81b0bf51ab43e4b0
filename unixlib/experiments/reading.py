""" "What you should see": short Markdown readings of a run's results, written from its numbers.

A notebook that shows a figure or a table follows it with a reading for the student: what
went right and what failed *in this run*. Numbers vary from run to run (another seed, another
machine, a longer schedule), so the sentences are computed here from the results rather than
typed into the notebooks. Every function takes plain results (frames, arrays, sentences) and
returns Markdown; none trains, samples or saves anything.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from unixlib.data.schema import LABELS
from unixlib.data.text.labeler import label_texts

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_HEADER = re.compile(r"\b(FINDINGS|IMPRESSION)\s*:\s*", re.IGNORECASE)


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"* {line}" for line in lines)


def loss(metrics: pd.DataFrame, term: str, what: str, vocab: int | None = None) -> str:
    """How a training loss moved: the mean of its first and last ten steps (and, for the
    cross-entropy, the chance level ln V of a uniform guess over ``vocab`` tokens)."""
    values = metrics[term].dropna().to_numpy(dtype=float)
    if len(values) == 0:
        return f"No {what} was logged."
    first, last = values[:10].mean(), values[-10:].mean()
    text = (
        f"The {what} goes from {first:.3f} (mean of the first 10 steps) to {last:.3f} (last 10) "
        f"over {len(values)} steps: {'it falls' if last < first else 'it does not fall'}"
    )
    if vocab:
        text += f"; a uniform guess over the {vocab:,} tokens would score ln {vocab} = "
        text += f"{math.log(vocab):.2f}"
    return text + "."


def sentences(report: str) -> list[str]:
    """The report's sentences, section headers removed."""
    return [s.strip() for s in _SENTENCE.split(_HEADER.sub("", report)) if s.strip()]


def repeated_sentences(report: str) -> dict[str, int]:
    """Sentences written more than once in one report (case-insensitive) -> count."""
    counts = Counter(s.lower() for s in sentences(report))
    return {s: c for s, c in counts.items() if c > 1}


def contradictions(report: str) -> list[str]:
    """Findings one sentence states and another denies (the rule labeler on each sentence)."""
    said = sentences(report)
    if not said:
        return []
    labels = label_texts(said)
    out = []
    for name in LABELS:
        if name == "no_finding":
            continue
        column = labels[name].to_numpy(dtype=float)
        if (column == 1).any() and (column == 0).any():
            out.append(name.replace("_", " "))
    return out


def reports(references: Sequence[str], generated: Sequence[str], agree: Sequence[bool]) -> str:
    """A reading of a few generated reports beside their references: label agreement, how
    many distinct reports, repeated sentences and self-contradictions."""
    n = len(generated)
    lines = [
        f"{int(np.sum(agree))} of {n} reports state the same 14 labels as their reference; "
        f"{len(set(generated))} of {n} are distinct texts."
    ]
    repeats = [(i, r) for i, r in enumerate(generated) if repeated_sentences(r)]
    if repeats:
        i, r = repeats[0]
        sentence, count = max(repeated_sentences(r).items(), key=lambda kv: kv[1])
        lines.append(
            f"{len(repeats)} report(s) repeat a sentence (report {i + 1} writes "
            f'"{sentence}" {count} times): greedy decoding of a small model loops.'
        )
    else:
        lines.append("No report repeats a sentence.")
    clashes = [(i, c) for i, c in enumerate(contradictions(r) for r in generated) if c]
    if clashes:
        i, found = clashes[0]
        lines.append(
            f"{len(clashes)} report(s) both state and deny a finding (report {i + 1}: "
            f"{', '.join(found)})."
        )
    else:
        lines.append("No report both states and denies a finding.")
    return _bullets(lines)


def retention(table: pd.DataFrame, low: float = 0.5) -> str:
    """The VAE's finding retention (``eval.vae_quality.finding_retention``): which findings its
    reconstructions keep, and which they lose."""
    kept = table.sort_values("ratio")
    weak = kept[kept["ratio"] < low]
    best = kept.iloc[-1]
    text = f"Reconstructions keep {best['ratio']:.2f} of the {best['case']} contrast (the best)"
    if len(weak):
        cases = ", ".join(f"{r.case} ({r.ratio:.2f})" for r in weak.itertuples())
        text += (
            f"; below {low} of the reference: {cases}. A finding the VAE loses cannot be "
            "drawn by the generator either, whatever the report says."
        )
    else:
        text += f"; every Fig. 4 finding keeps at least {low} of its contrast."
    return text


def fig4(contrast: pd.DataFrame, side: pd.DataFrame, faint: float = 0.3) -> str:
    """Fig. 4's numbers: which prompted findings the samples show, and on which side."""
    shown = contrast[contrast["ratio"] >= faint]
    missed = contrast[contrast["ratio"] < faint]
    lines = [
        f"{len(shown)} of {len(contrast)} prompted findings appear with at least {faint} of the "
        f"SynthCXR reference's contrast"
        + (f"; not drawn (below {faint}): " + ", ".join(missed["case"]) if len(missed) else "")
        + "."
    ]
    for r in side.itertuples():
        right = "on its own side" if r.own_side > r.other_side else "on the WRONG side"
        lines.append(
            f"{r.case}: {r.own_side:.2f} of the reference's strength on its side, "
            f"{r.other_side:.2f} on the other: drawn {right}."
        )
    return _bullets(lines)


def verdict_counts(sentences_: Sequence[str]) -> str:
    """How many comparisons found a difference ("beats" / "is worse than") and how many did
    not, from :func:`unixlib.eval.intervals.verdict` sentences."""
    beats = sum(" beats " in s for s in sentences_)
    worse = sum(" is worse than " in s for s in sentences_)
    none = sum("no detectable difference" in s for s in sentences_)
    return (
        f"{beats} comparison(s) find the first system better, {worse} worse, and {none} no "
        "detectable difference (the 95% interval of the paired difference contains 0)."
    )


def understanding(table2: pd.DataFrame, verdicts: Sequence[str], model: str) -> str:
    """Table 2's headline with its interval, and the verdicts against each baseline."""
    row = table2.set_index("method").loc[model]
    key = "micro14 (u=pos)"
    head = (
        f"{model}: micro-F1-14 (uncertain as positive) {row[key]:.1f} "
        f"[{row[key + '_low']:.1f}, {row[key + '_high']:.1f}]. " + verdict_counts(verdicts)
    )
    return head + "\n\n" + _bullets([v for v in verdicts if v.startswith(key)])


def per_class(per_class_f1: pd.DataFrame, model: str, n: int = 3) -> str:
    """The classes the model reads best and worst (among those with reference positives)."""
    rows = per_class_f1[per_class_f1["reference positives"] > 0].sort_values(model)
    if rows.empty:
        return "No class has a positive reference report."
    worst = ", ".join(f"{r['class']} {r[model]:.2f}" for _, r in rows.head(n).iterrows())
    best = ", ".join(f"{r['class']} {r[model]:.2f}" for _, r in rows.tail(n)[::-1].iterrows())
    absent = per_class_f1.loc[per_class_f1["reference positives"] == 0, "class"].tolist()
    text = f"Best read: {best}. Worst: {worst}."
    if absent:
        text += f" No positive test report for {', '.join(absent)} (F1 0 by convention)."
    return text


def generation(g: dict) -> str:
    """Table 3's verdicts and the faithfulness headline (all classes, and the 5 large ones)."""
    lines = [
        f"Finding faithfulness over every class the classifier can judge on real images: "
        f"{g['faithfulness_all']:.2f} [{g['faithfulness_all_interval'][0]:.2f}, "
        f"{g['faithfulness_all_interval'][1]:.2f}] of the way from chance (0) to real images (1);"
        f" over the five large findings alone: {g['faithfulness_mean']:.2f}.",
        verdict_counts(g["verdicts"]),
    ]
    return _bullets(lines) + "\n\n" + _bullets(g["verdicts"])


def samples(grid: dict[str, Sequence[np.ndarray]], real: str = "real") -> str:
    """Samples over training, against the real images of the same reports: the contrast
    inside each image (pixel standard deviation: a blurred blob has little) and how much the
    images differ from one report to the next (a model that ignores the report draws alike)."""

    def stats(images: Sequence[np.ndarray]) -> tuple[float, float]:
        stack = np.stack([np.asarray(i, dtype=float) for i in images])  # (n, H, W)
        return float(stack.std(axis=(1, 2)).mean()), float(stack.std(axis=0).mean())

    ref_within, ref_across = stats(grid[real])
    lines = [
        f"real images: contrast within an image {ref_within:.3f}, difference between "
        f"reports {ref_across:.3f}"
    ]
    for name, images in grid.items():
        if name == real:
            continue
        within, across = stats(images)
        lines.append(
            f"{name}: within {within:.3f} ({within / ref_within:.0%} of real), "
            f"between reports {across:.3f} ({across / ref_across:.0%} of real)"
        )
    return _bullets(lines)


def cleaning(status: pd.Series) -> str:
    """How the rows ended after cleaning (``clean_status`` values' kinds)."""
    kinds = status.astype(str).str.split(":").str[0].value_counts()
    parts = ", ".join(f"{n:,} {k}" for k, n in kinds.items())
    return f"{len(status):,} rows: {parts}; no row is dropped (each keeps its status)."


def lengths(raw: Sequence[str], cleaned: Sequence[str], tokenizer, budget: int) -> str:
    """Report lengths in tokens before and after cleaning, against the training budget (the
    ``max_report_tokens`` reports are cut to): what a model trained on raw text would lose."""

    def tokens(texts: Sequence[str]) -> np.ndarray:
        kept = [t for t in texts if isinstance(t, str) and t]
        return np.array([len(tokenizer.encode(t)) for t in kept]) if kept else np.zeros(1)

    r, c = tokens(raw), tokens(cleaned)
    return (
        f"Median length {np.median(r):.0f} tokens raw, {np.median(c):.0f} cleaned; with the "
        f"training budget of {budget} tokens, {np.mean(r > budget):.0%} of raw reports and "
        f"{np.mean(c > budget):.0%} of cleaned ones would be cut."
    )
