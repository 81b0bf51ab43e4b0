"""IU X-ray human MeSH annotations as CheXpert labels, and the labeler's agreement with them.

IU X-ray (Open-i, Demner-Fushman et al., JAMIA 2016) reports carry ``mesh_major``: terms
separated by ``|``, each a MeSH heading followed by ``/``-separated qualifiers, e.g.
``Cardiomegaly/mild|Opacity/lung/base/left``, or the single term ``normal``.

**Mapping.** A term maps to a CheXpert observation when the observation's definition (its
CheXpert mention vocabulary) names the same finding; a rule may also require a qualifier
(``Cardiac Shadow/enlarged`` is cardiomegaly, plain ``Cardiac Shadow`` is not). Findings that
CheXpert has no class for (granuloma, scoliosis, hiatal hernia, emphysema, ...) stay
unmapped. Annotators index findings that are present (possibly hedged), never absent ones,
so the truth is 1 (term present) or 0; ``normal`` means the whole study is normal and
maps to No Finding.

**Scored classes.** A class is scored when the mapping yields at least
``MIN_SUPPORT`` positive studies in the train+val CSV; with the rules below that drops
Enlarged Cardiomediastinum (too few ``Mediastinum/enlarged`` terms to measure).

**Excluded rows.** Studies indexed ``No Indexing`` have no human labels and are left out.

**Splits.** :func:`r2gen_split` assigns each study R2Gen's ``train`` or ``val`` split (from
``annotation_r2gen_trainval.json`` beside the CSV; 1,000 studies are in neither). Rules may
be tuned on ``train`` reports only; ``val`` gives the held-out agreement
(:func:`iu_split_agreement`).

**Counting.** The main number counts the labeler's uncertain (-1) as positive: indexers do
index hedged observations ("borderline cardiomegaly" gets ``Cardiomegaly``, "mild vascular
congestion", which CheXpert calls uncertain edema, gets ``Pulmonary Congestion``). They
mostly skip differential diagnoses ("may represent pneumonia"), so ``uncertain_as=0.0`` is
reported alongside; on the train+val CSV the two give micro/macro F1 0.903/0.855 and
0.910/0.870, on the held-out ``val`` split 0.917/0.868 and 0.920/0.863. Negative and
not-mentioned both count as negative.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from unixlib.data.schema import POSITIVE, UNCERTAIN
from unixlib.data.text.labeler import label_texts

# (MeSH heading, required qualifier or None, CheXpert observation). Lung scarring and
# interstitial markings count as Lung Opacity because CheXpert's mention list for that class
# names them ("scar", "interstitial marking"); pleural scarring is Pleural Other likewise.
MESH_RULES: tuple[tuple[str, str | None, str], ...] = (
    ("Cardiomegaly", None, "cardiomegaly"),
    ("Cardiac Shadow", "enlarged", "cardiomegaly"),
    ("Mediastinum", "enlarged", "enlarged_cardiomediastinum"),
    ("Opacity", None, "lung_opacity"),
    ("Airspace Disease", None, "lung_opacity"),
    ("Infiltrate", None, "lung_opacity"),
    ("Cicatrix", "lung", "lung_opacity"),
    ("Markings", None, "lung_opacity"),
    ("Nodule", None, "lung_lesion"),
    ("Mass", None, "lung_lesion"),
    ("Pulmonary Edema", None, "edema"),
    ("Pulmonary Congestion", None, "edema"),
    ("Heart Failure", None, "edema"),
    ("Consolidation", None, "consolidation"),
    ("Pneumonia", None, "pneumonia"),
    ("Pulmonary Atelectasis", None, "atelectasis"),
    ("Pneumothorax", None, "pneumothorax"),
    ("Hydropneumothorax", None, "pneumothorax"),
    ("Hemopneumothorax", None, "pneumothorax"),
    ("Pleural Effusion", None, "pleural_effusion"),
    ("Hydropneumothorax", None, "pleural_effusion"),
    ("Thickening", "pleura", "pleural_other"),
    ("Cicatrix", "pleura", "pleural_other"),
    ("Fractures, Bone", None, "fracture"),
    ("Catheters, Indwelling", None, "support_devices"),
    ("Implanted Medical Device", None, "support_devices"),
    ("Medical Device", None, "support_devices"),
    ("Tube, Inserted", None, "support_devices"),
    ("normal", None, "no_finding"),
)
MAPPED_CLASSES: tuple[str, ...] = tuple(dict.fromkeys(name for _, _, name in MESH_RULES))
MIN_SUPPORT = 20  # positives needed in the train+val CSV for a class to be scored
NO_INDEXING = "No Indexing"


def mesh_terms(mesh_major: str) -> list[tuple[str, tuple[str, ...]]]:
    """Split ``mesh_major`` into ``(heading, qualifiers)`` pairs (``""`` -> ``[]``)."""
    terms = []
    for raw in mesh_major.split("|"):
        parts = [p.strip() for p in raw.split("/") if p.strip()]
        if parts:
            terms.append((" ".join(parts[0].split()), tuple(q.lower() for q in parts[1:])))
    return terms


def mesh_to_labels(mesh_major: str) -> dict[str, float]:
    """CheXpert truth for one study: 1.0 for each mapped class present, 0.0 for the others.

    Keys are ``MAPPED_CLASSES``. Raises ``ValueError`` for a non-string or empty annotation.
    """
    if not isinstance(mesh_major, str) or not mesh_major.strip():
        raise ValueError(f"mesh_major must be a non-empty string, got {mesh_major!r}")
    out = dict.fromkeys(MAPPED_CLASSES, 0.0)
    for heading, qualifiers in mesh_terms(mesh_major):
        for rule_heading, needed, name in MESH_RULES:
            if heading.lower() == rule_heading.lower() and (needed is None or needed in qualifiers):
                out[name] = POSITIVE
    return out


def agreement(
    pred: pd.DataFrame, truth: pd.DataFrame, classes: Sequence[str], uncertain_as: float = 1.0
) -> pd.DataFrame:
    """Per-class agreement of labeler output with truth labels.

    Args:
        pred: labeler output (1 / 0 / -1 / NaN), one row per study, a column per class.
        truth: 1 / 0 (/ -1 / NaN) per study and class, same row order as ``pred``.
        classes: the columns to score.
        uncertain_as: 1.0 counts an uncertain (-1) value as positive, 0.0 as negative; it
            applies to both sides (human MeSH truth has no -1; SynthCXR's truth does).

    Returns:
        One row per class plus ``micro`` (tp/fp/fn pooled over classes) and ``macro`` (mean
        of the per-class precision/recall/F1), columns ``tp fp fn support precision recall
        f1``, with F1 = tp / (tp + (fp + fn) / 2); a metric with an empty denominator is 0.
    """
    if len(pred) != len(truth):
        raise ValueError(f"pred has {len(pred)} rows but truth has {len(truth)}")
    if uncertain_as not in (0.0, 1.0):
        raise ValueError(f"uncertain_as must be 0.0 or 1.0, got {uncertain_as}")
    missing = [c for c in classes if c not in pred.columns or c not in truth.columns]
    if missing:
        raise ValueError(f"classes {missing} missing from pred or truth columns")
    rows = {}
    for c in classes:
        p = pred[c].to_numpy(dtype=float)
        p_pos = (p == POSITIVE) | ((p == UNCERTAIN) & (uncertain_as == 1.0))
        t = truth[c].to_numpy(dtype=float)
        t_pos = (t == POSITIVE) | ((t == UNCERTAIN) & (uncertain_as == 1.0))
        rows[c] = _scores(
            int((p_pos & t_pos).sum()), int((p_pos & ~t_pos).sum()), int((~p_pos & t_pos).sum())
        )
    table = pd.DataFrame.from_dict(rows, orient="index")
    pooled = table[["tp", "fp", "fn", "support"]].sum()
    table.loc["micro"] = _scores(int(pooled.tp), int(pooled.fp), int(pooled.fn))
    table.loc["macro"] = [*pooled, *table.loc[list(classes), ["precision", "recall", "f1"]].mean()]
    return table


def _scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    """tp/fp/fn/support with precision, recall and F1 (0 where a denominator is 0)."""

    def ratio(a: float, b: float) -> float:
        return a / b if b else 0.0

    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "support": tp + fn,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(tp, tp + (fp + fn) / 2),
    }


R2GEN_ANNOTATION = "annotation_r2gen_trainval.json"  # beside the CSV: R2Gen's train/val split
SPLITS = ("train", "val")


def r2gen_split(csv_path: Path) -> pd.Series:
    """Per CSV row, the R2Gen split of its study (``train``, ``val``, or ``""`` for studies
    R2Gen left out), read from :data:`R2GEN_ANNOTATION` in the CSV's folder (an R2Gen id
    ``CXR2384_IM-0942`` is study ``uid`` 2384).

    Raises:
        FileNotFoundError: the annotation file is not beside the CSV.
    """
    path = Path(csv_path).with_name(R2GEN_ANNOTATION)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: R2Gen annotation needed for the split is absent")
    annotation = json.loads(path.read_text())
    split_of = {
        int(re.match(r"CXR(\d+)_", row["id"]).group(1)): split
        for split in SPLITS
        for row in annotation[split]
    }
    uids = pd.read_csv(csv_path, usecols=["uid"])["uid"]
    return uids.map(lambda u: split_of.get(int(u), "")).rename("split")


def load_iu_truth(csv_path: Path, split: str | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """Report texts (findings + impression) and MeSH truth of an IU reports CSV.

    Rows indexed ``No Indexing`` or with an empty ``mesh_major`` are excluded (no human
    labels). ``split`` (``train`` / ``val``) keeps only that R2Gen split's studies
    (:func:`r2gen_split`); ``None`` keeps all. Raises ``ValueError`` naming the file when a
    needed column is missing or the split is unknown.
    """
    df = pd.read_csv(csv_path)
    missing = [c for c in ("findings", "impression", "mesh_major") if c not in df.columns]
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {missing}")
    mesh = df["mesh_major"].fillna("").astype(str)
    keep = (mesh.str.strip() != "") & (mesh.str.strip() != NO_INDEXING)
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        keep &= r2gen_split(csv_path) == split
    df = df[keep].reset_index(drop=True)
    texts = df["findings"].fillna("") + " .\n" + df["impression"].fillna("")
    truth = pd.DataFrame([mesh_to_labels(m) for m in df["mesh_major"]], columns=MAPPED_CLASSES)
    return texts, truth


def load_iu_reports(csv_path: Path) -> list[str]:
    """Every study of an IU reports CSV as a raw report, the way the ``iuxray`` source writes
    ``report_raw``: ``"COMPARISON: ...\nINDICATION: ...\nFINDINGS: ...\nIMPRESSION: ..."``,
    empty sections left out (the cleaner's and the judge's real-text input)."""
    df = pd.read_csv(csv_path)
    heads = ("comparison", "indication", "findings", "impression")
    missing = [c for c in heads if c not in df.columns]
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {missing}")
    df = df[list(heads)].fillna("").astype(str)
    return [
        "\n".join(f"{h.upper()}: {row[h].strip()}" for h in heads if row[h].strip())
        for _, row in df.iterrows()
    ]


def scored_classes(truth: pd.DataFrame, min_support: int = MIN_SUPPORT) -> list[str]:
    """Mapped classes with at least ``min_support`` positive studies in ``truth``."""
    return [c for c in MAPPED_CLASSES if truth[c].sum() >= min_support]


def iu_agreement(
    csv_path: Path, uncertain_as: float = 1.0, split: str | None = None
) -> pd.DataFrame:
    """Label an IU reports CSV's findings + impression and score against its MeSH truth.

    The scored classes are fixed on the whole CSV (so a split scores the same classes);
    ``split`` restricts the scored studies (:func:`load_iu_truth`).
    """
    classes = scored_classes(load_iu_truth(csv_path)[1])
    texts, truth = load_iu_truth(csv_path, split)
    pred = label_texts(texts)
    return agreement(pred, truth, classes, uncertain_as=uncertain_as)


def iu_split_agreement(csv_path: Path) -> pd.DataFrame:
    """Micro/macro F1 of the labeler on R2Gen's ``train`` and ``val`` splits, uncertain
    counted as positive and as negative: one row per split, with its number of studies.

    The rules may be tuned on ``train`` reports only; ``val`` is the held-out number.
    """
    classes = scored_classes(load_iu_truth(csv_path)[1])
    rows = {}
    for split in SPLITS:
        texts, truth = load_iu_truth(csv_path, split)
        pred = label_texts(texts)  # once per split, scored both ways
        pos = agreement(pred, truth, classes, uncertain_as=1.0)
        neg = agreement(pred, truth, classes, uncertain_as=0.0)
        rows[split] = {
            "studies": len(texts),
            "micro_f1": pos.loc["micro", "f1"],
            "macro_f1": pos.loc["macro", "f1"],
            "micro_f1_unc_neg": neg.loc["micro", "f1"],
            "macro_f1_unc_neg": neg.loc["macro", "f1"],
        }
    return pd.DataFrame.from_dict(rows, orient="index")
