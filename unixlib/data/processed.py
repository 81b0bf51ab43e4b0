"""The processed dataset that notebook 01 writes and notebooks 02-06 read.

Layout under ``<run_dir>/data/``::

    manifest.parquet         from a source (`unixlib prepare`): one row per image-report pair
    rejects.csv              rows that could not be used, with the reason
    images/<id>.png          square 8-bit cache at the profile's resolution
    manifest_clean.parquet   + report_clean, clean_status, clean_check (`unixlib clean`)
    processed.parquet        + labels filled by the labeler where the source had none,
                               label_source; the table every later notebook reads
    tokenizer/               tokenizer.json + special_tokens.json
    understanding_test.parquet  only with the release's test_data.json (``release-eval``):
                             the paper's understanding test pairs (id, image_path, prompt,
                             reference); notebook 05's Table 2 is then computed on them
    cleaning.json            how the reports were cleaned (rules / LLM, model, row counts):
                             the tables' captions say it (:func:`cleaning_note`)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from unixlib.data.schema import FRONTAL_VIEWS, LABELS
from unixlib.data.sources.understanding_test import UNDERSTANDING_TEST_FILE
from unixlib.data.text.labeler import label_texts
from unixlib.data.text.tokenizer import ReportTokenizer, train_bpe


@dataclass(frozen=True)
class DataPaths:
    """Where each artifact of the data stage lives, given the data folder."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.parquet"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects.csv"

    @property
    def manifest_clean(self) -> Path:
        return self.root / "manifest_clean.parquet"

    @property
    def processed(self) -> Path:
        return self.root / "processed.parquet"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer"

    @property
    def understanding_test(self) -> Path:
        return self.root / UNDERSTANDING_TEST_FILE

    @property
    def llm_cache(self) -> Path:
        return self.root / "llm_cache"

    @property
    def cleaning(self) -> Path:
        return self.root / CLEANING_FILE

    @classmethod
    def of_run(cls, run_dir: Path) -> DataPaths:
        return cls(Path(run_dir) / "data")


CLEANING_FILE = "cleaning.json"


def save_cleaning_note(paths: DataPaths, llm_model: str | None, statuses: Sequence[str]) -> dict:
    """Write ``cleaning.json``: how notebook 01 cleaned the reports (``llm_model`` None: rules
    only) and how many rows each cleaning status has; returns what it wrote."""
    counts = Counter(str(s).split(":")[0] for s in statuses)
    note = {"llm_model": llm_model or "", "rows": len(statuses), "status_counts": dict(counts)}
    note["caption"] = _caption(note)
    paths.cleaning.write_text(json.dumps(note, indent=2) + "\n")
    return note


def _caption(note: dict) -> str:
    """ "rule-cleaned", or "LLM-cleaned (<model>; n of N rows, the rest rule-cleaned)"."""
    n_llm = int(note["status_counts"].get("llm", 0))
    if not note["llm_model"] or n_llm == 0:
        return "rule-cleaned"
    rest = note["rows"] - n_llm
    tail = f"; {n_llm:,} of {note['rows']:,} rows, the rest rule-cleaned" if rest else ""
    return f"LLM-cleaned ({note['llm_model']}{tail})"


def cleaning_note(paths: DataPaths) -> dict:
    """``cleaning.json`` of a data folder (its ``caption`` goes into every table caption); a
    folder written before the file existed is read from ``processed.parquet``'s statuses
    (``llm_model`` then unknown)."""
    if paths.cleaning.is_file():
        return json.loads(paths.cleaning.read_text())
    statuses = pd.read_parquet(paths.processed, columns=["clean_status"])["clean_status"]
    counts = Counter(str(s).split(":")[0] for s in statuses)
    note = {"llm_model": "unknown model" if counts.get("llm") else "", "rows": len(statuses)}
    note["status_counts"] = dict(counts)
    return note | {"caption": _caption(note)}


def fill_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Label rows whose source gave no labels at all (every label NaN) from ``report_clean``.

    Rows with source labels keep them (MIMIC's CheXpert CSV, SynthCXR's ground truth, a folder
    CSV's findings). ``label_source`` records which of the two each row has: ``source``,
    ``labeler``, or ``none`` when there is no usable report either.
    """
    out = frame.copy()
    unlabeled = out[list(LABELS)].isna().all(axis=1).to_numpy()
    has_text = out["report_clean"].fillna("").str.len().to_numpy() > 0
    todo = unlabeled & has_text
    out["label_source"] = np.where(unlabeled, np.where(has_text, "labeler", "none"), "source")
    if todo.any():
        labels = label_texts(out.loc[todo, "report_clean"].tolist())
        out.loc[todo, list(LABELS)] = labels[list(LABELS)].to_numpy()
    return out


def unusable_reason(frame: pd.DataFrame) -> pd.Series:
    """Per row, why the training stages skip it ("" = usable: an image, a cleaned report and a
    frontal view). Only the first failing condition is named."""
    reason = pd.Series("", index=frame.index, dtype=object)
    not_frontal = ~frame["view"].isin(sorted(FRONTAL_VIEWS))
    reason[not_frontal] = "view not frontal (PA/AP/FRONTAL) or unknown"
    reason[frame["report_clean"].fillna("") == ""] = "no cleaned report"
    reason[frame["image_path"].fillna("") == ""] = "no image"
    return reason


def usable(frame: pd.DataFrame) -> pd.Series:
    """Rows the training stages may use: an image, a cleaned report, a frontal view."""
    return unusable_reason(frame) == ""


def build_tokenizer(
    frame: pd.DataFrame, out_dir: Path, vocab_size: int, pretrained_dir: str = ""
) -> ReportTokenizer:
    """Janus-Pro's tokenizer when ``pretrained_dir`` is given (paper profiles); otherwise a
    byte-level BPE trained on the training split's cleaned reports, saved to ``out_dir``."""
    if pretrained_dir:
        tok = ReportTokenizer.load(pretrained_dir)
        tok.save(out_dir)
        return tok
    train = frame[(frame["split"] == "train") & usable(frame)]
    return train_bpe(train["report_clean"].tolist(), vocab_size=vocab_size, out_dir=out_dir)


def load_data(paths: DataPaths) -> tuple[pd.DataFrame, ReportTokenizer, DataPaths]:
    """The processed table and tokenizer of a data folder (notebook 01's output), and its paths."""
    if not paths.processed.is_file():
        raise FileNotFoundError(
            f"{paths.processed} is missing: run notebook 01 for this data folder first"
        )
    return pd.read_parquet(paths.processed), ReportTokenizer.load(paths.tokenizer), paths


def load_processed(run_dir: Path) -> tuple[pd.DataFrame, ReportTokenizer, DataPaths]:
    """What notebooks 02-06 start from: ``load_data`` of ``<run_dir>/data``."""
    return load_data(DataPaths.of_run(run_dir))
