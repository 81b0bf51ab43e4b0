"""RadGraph F1 (Delbrouck et al., 2022; Yu et al., 2023): the reward of two reports' RadGraph
annotations, as the UniX release computes it (``eval/und_metrics/radgraph_metrics.py``, its
``F1RadGraphv2`` over the ``radgraph`` package's annotator; the paper reports "RadGraph F1
(partial)").

An *annotation* is what the RadGraph annotator returns for one report (see
:mod:`unixlib.eval.radgraph`): ``{"entities": {id: {"tokens": "left lung", "label": "ANAT-DP",
"relations": [["modify", other_id], ...], ...}, ...}, ...}``. Each report becomes a *set* of
candidates, and precision / recall / F1 compare the two sets:

- ``simple``: ``(tokens, label)`` for every entity;
- ``partial`` (the paper's number): ``(tokens, label)`` for an entity without relations,
  ``(tokens, label, True)`` for one with at least one relation;
- ``complete``: ``(tokens, label)`` for an entity without relations, and for each relation of
  an entity ``(tokens.lower(), label, relation, object_tokens.lower())`` (only the relational
  candidates are lower-cased, as in the package).

Per report: ``P = |hyp & ref| / (|hyp| + eps)``, ``R = |hyp & ref| / (|ref| + eps)``,
``F1 = 2PR / (P + R + eps)`` with ``eps = 1e-10`` (the release; the ``radgraph`` package's own
``F1RadGraph`` uses none and returns F1 only); each is 0 when its denominator set is empty or
``P + R = 0``. A report pair scores ``(0, 0, 0)`` when either text is empty (``len == 0``; it
never reaches the annotator) or either annotation has no entity. The corpus numbers are the plain
means over all report pairs, zeros included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

LEVELS = ("simple", "partial", "complete")
EPS = 1e-10  # the release's guard in every denominator
Annotation = Mapping[str, Any]  # {"entities": {id: {"tokens", "label", "relations"}}, ...}


def candidates(annotation: Annotation, level: str) -> set[tuple]:
    """The set of candidates a report contributes at ``level`` (see the module docstring)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    entities = annotation["entities"]
    out: set[tuple] = set()
    for entity in entities.values():
        tokens, label, relations = entity["tokens"], entity["label"], entity["relations"]
        if level == "simple" or not relations:
            out.add((tokens, label))
        elif level == "partial":
            out.add((tokens, label, True))
        else:  # complete: one candidate per relation, object named by its tokens
            for relation, obj in relations:
                out.add((tokens.lower(), label, relation, entities[obj]["tokens"].lower()))
    return out


def _prf(hyp: set[tuple], ref: set[tuple], eps: float) -> tuple[float, float, float]:
    """(F1, precision, recall) of two candidate sets, as the release computes them."""
    matched = len(hyp & ref)
    precision = matched / (len(hyp) + eps) if hyp else 0.0
    recall = matched / (len(ref) + eps) if ref else 0.0
    f1 = 2 * precision * recall / (precision + recall + eps) if precision + recall > 0 else 0.0
    return f1, precision, recall


def report_reward(
    hyp: Annotation, ref: Annotation, level: str = "partial", eps: float = EPS
) -> tuple[float, float, float]:
    """(F1, precision, recall) of one generated report's annotation against its reference."""
    if not hyp["entities"] or not ref["entities"]:
        return 0.0, 0.0, 0.0
    return _prf(candidates(hyp, level), candidates(ref, level), eps)


def radgraph_scores(
    hyps: Sequence[Annotation | None],
    refs: Sequence[Annotation | None],
    level: str = "partial",
    eps: float = EPS,
) -> dict[str, Any]:
    """Mean F1 / precision / recall over report pairs, and the per-pair rewards.

    ``None`` stands for an empty report (scored ``(0, 0, 0)``, as the release does for a
    zero-length text). Returns ``{"f1", "precision", "recall"}`` (floats) and ``"per_report"``,
    an (N, 3) array of (F1, P, R) for bootstrap intervals over studies.
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} generated annotations but {len(refs)} references")
    if not hyps:
        raise ValueError("radgraph_scores: empty input (no reports to score)")
    rewards = np.array(
        [
            (0.0, 0.0, 0.0) if h is None or r is None else report_reward(h, r, level, eps)
            for h, r in zip(hyps, refs, strict=True)
        ]
    )  # (N, 3)
    f1, precision, recall = rewards.mean(axis=0)
    return {
        "f1": float(f1),
        "precision": float(precision),
        "recall": float(recall),
        "per_report": rewards,
    }
