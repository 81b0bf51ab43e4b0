"""The data contract shared by every data source, the cleaner, the labeler and the datasets.

A *manifest* is one table (Parquet) with one row per image-report pair:

| column          | type  | meaning                                                        |
|-----------------|-------|----------------------------------------------------------------|
| ``id``          | str   | unique row id (stable across rebuilds)                         |
| ``source``      | str   | ``synth`` / ``mimic`` / ``iuxray`` / ``folder``                |
| ``image_path``  | str   | cached image, relative to the manifest's folder ("" = no image)|
| ``view``        | str   | ``PA`` / ``AP`` / ``FRONTAL`` / ``LATERAL`` / ``LL`` / ``UNKNOWN`` |
| ``split``       | str   | ``train`` / ``validate`` / ``test``                            |
| ``report_raw``  | str   | the report as the source gives it ("" = none)                  |
| ``report_clean``| str   | written by ``unixlib clean``                                   |
| ``clean_status``| str   | ``llm`` / ``rules`` / ``relaxed:<r>`` / ``unverified:<r>`` /     |
|                 |       | ``fallback:<r>`` / ``rejected:<r>`` (``unixlib.data.text.clean``)     |
| ``clean_check`` | str   | the judge check that caught the rule result ("" = passed)       |
| 14 label cols   | float | 1 positive, 0 negative, -1 uncertain, NaN not mentioned        |

Two optional columns, written only by a source that separates the two tasks' annotation sets
(``mimic`` with the LLaVA-Rad annotation CSVs; absent = every row serves both tasks with its
cleaned report):

| column          | type  | meaning                                                        |
|-----------------|-------|----------------------------------------------------------------|
| ``task``        | str   | ``und`` / ``gen`` / ``both``: the training set(s) the row is in |
| ``report_gen``  | str   | the generation prompt, used verbatim ("" = ``report_clean``)    |

The paper trains understanding on 163,344 pairs (MIMIC-CXR reports, cleaned) and generation
on 237,387 (the LLaVA-Rad annotations, CheXGenBench's split): two annotation sets over
overlapping images, so one row per image carries both texts and says which sets it is in.
"""

from __future__ import annotations

# The 14 CheXpert observations, in CheXpert's order, as manifest column names.
LABELS: tuple[str, ...] = (
    "enlarged_cardiomediastinum",
    "cardiomegaly",
    "lung_opacity",
    "lung_lesion",
    "edema",
    "consolidation",
    "pneumonia",
    "atelectasis",
    "pneumothorax",
    "pleural_effusion",
    "pleural_other",
    "fracture",
    "support_devices",
    "no_finding",
)

# CheXpert's own spelling of each observation (the header of CheXpert label CSVs).
CHEXPERT_NAMES: dict[str, str] = {
    "enlarged_cardiomediastinum": "Enlarged Cardiomediastinum",
    "cardiomegaly": "Cardiomegaly",
    "lung_opacity": "Lung Opacity",
    "lung_lesion": "Lung Lesion",
    "edema": "Edema",
    "consolidation": "Consolidation",
    "pneumonia": "Pneumonia",
    "atelectasis": "Atelectasis",
    "pneumothorax": "Pneumothorax",
    "pleural_effusion": "Pleural Effusion",
    "pleural_other": "Pleural Other",
    "fracture": "Fracture",
    "support_devices": "Support Devices",
    "no_finding": "No Finding",
}

# The five classes of the "F1-5" metrics (PAPER.md, Metrics).
LABELS_5: tuple[str, ...] = (
    "atelectasis",
    "cardiomegaly",
    "edema",
    "consolidation",
    "pleural_effusion",
)

# Label values.
POSITIVE, NEGATIVE, UNCERTAIN = 1.0, 0.0, -1.0

SPLITS: tuple[str, ...] = ("train", "validate", "test")
# Views training uses. ``FRONTAL`` is a frontal image whose PA/AP is not recorded (IU X-ray's
# projection lists say only "Frontal" / "Lateral"); ``UNKNOWN`` may be lateral, so it is not.
FRONTAL_VIEWS: frozenset[str] = frozenset({"PA", "AP", "FRONTAL"})

MANIFEST_COLUMNS: tuple[str, ...] = (
    "id",
    "source",
    "image_path",
    "view",
    "split",
    "report_raw",
    *LABELS,
)
TASK_COLUMN, GEN_TEXT_COLUMN = "task", "report_gen"  # the optional columns (module doc)
TASKS: tuple[str, ...] = ("und", "gen", "both")
