"""Rows quoted from the paper (arXiv 2601.11522, via ``PAPER.md``), printed beside this run's.

Every table of notebook 05 carries these rows marked ``paper (quoted)``: they are reference
points, measured by the authors on MIMIC-CXR with CheXbert and RadDino, and are not comparable
in value with a run on another dataset or with other encoders.
"""

from __future__ import annotations

# Table 2 (CheXbert F1, %): (model, params, uneg: micro14 micro5 macro14 macro5, upos: same).
NAN = float("nan")
TABLE2: tuple[tuple[str, str, tuple[float, ...], tuple[float, ...]], ...] = (
    ("GPT-4V", "-", (35.5, 25.8, 20.4, 19.6), (35.6, 33.3, 25.3, 29.6)),
    ("Med-PaLM M", "84B", (53.6, 57.9, 39.8, 51.6), (NAN, NAN, NAN, NAN)),
    ("LLaVA-Rad", "7B", (57.3, 57.4, 39.5, 47.7), (57.3, 60.2, 44.0, 53.3)),
    ("LLaVA-Med", "7B", (27.2, 22.0, 15.5, 16.6), (27.3, 24.4, 18.7, 20.5)),
    ("FlamingoCXR", "3B", (NAN, NAN, NAN, NAN), (51.9, 58.0, NAN, NAN)),
    ("PromptMRG", "<1B", (15.3, 6.0, 7.8, 3.5), (15.0, 6.9, 8.4, 4.1)),
    ("RGRG", "<1B", (38.9, 47.2, 23.7, 40.8), (37.4, 49.0, 24.4, 42.7)),
    ("LLM-CXR (unified)", "12B", (NAN, NAN, NAN, NAN), (36.0, NAN, 21.1, NAN)),
    ("HealthGPT (unified)", "3.8B", (24.2, 25.1, 14.6, 18.5), (25.5, 28.2, 17.5, 22.6)),
    ("UniX (unified)", "1.5B", (53.6, 56.6, 33.2, 47.3), (52.6, 57.9, 35.5, 49.8)),
)

# Table 3: model, params, res, FD, KD, align, precision, recall, density, coverage.
TABLE3: tuple[tuple[str, str, int, float, float, float, float, float, float, float], ...] = (
    ("Flux.1-Dev (fine-tuned)", "2.6B", 1024, 122.400, 0.144, 0.036, 0.420, 0.008, 0.125, 0.326),
    ("Lumina 2.0 (fine-tuned)", "2.5B", 1024, 101.198, 0.110, 0.121, 0.574, 0.014, 0.256, 0.170),
    ("SD 3.5 Medium (fine-tuned)", "2.5B", 1024, 91.302, 0.103, 0.044, 0.632, 0.205, 0.401, 0.244),
    ("SD 2-1 (fine-tuned)", "0.86B", 512, 186.530, 0.413, 0.197, 0.530, 0.049, 0.180, 0.038),
    ("RadEdit", "0.86B", 512, 69.695, 0.033, 0.677, 0.397, 0.544, 0.150, 0.285),
    ("Sana (fine-tuned)", "0.6B", 512, 54.225, 0.016, 0.695, 0.674, 0.614, 0.520, 0.548),
    ("PixArt-Sigma (fine-tuned)", "0.6B", 512, 60.154, 0.023, 0.697, 0.666, 0.522, 0.506, 0.506),
    ("LLM-CXR", "12B", 256, 71.243, 0.061, 0.319, 0.782, 0.041, 0.671, 0.459),
    ("UniX", "1.5B", 256, 65.208, 0.051, 0.251, 0.675, 0.243, 0.366, 0.419),
    ("UniX", "1.5B", 512, 54.022, 0.024, 0.635, 0.736, 0.479, 0.536, 0.550),
)

# Table 4 (FD-RadDino per pathology), columns in the paper's order (At Cd Cn Ec Fc Fr LL LO NF
# PE PO PN PT SD), mapped to our label names below.
TABLE4_ORDER: tuple[str, ...] = (
    "atelectasis",
    "cardiomegaly",
    "consolidation",
    "edema",
    "enlarged_cardiomediastinum",
    "fracture",
    "lung_lesion",
    "lung_opacity",
    "no_finding",
    "pleural_effusion",
    "pleural_other",
    "pneumonia",
    "pneumothorax",
    "support_devices",
)
TABLE4: tuple[tuple[str, int, tuple[float, ...]], ...] = (
    (
        "RadEdit",
        512,
        (
            63.38,
            62.79,
            136.59,
            76.94,
            155.97,
            197.58,
            184.11,
            61.90,
            67.88,
            60.60,
            215.92,
            114.66,
            151.34,
            53.10,
        ),
    ),
    (
        "PixArt-Sigma",
        512,
        (
            59.27,
            60.39,
            133.96,
            73.93,
            155.53,
            179.44,
            174.63,
            56.83,
            48.74,
            59.05,
            210.90,
            108.42,
            150.55,
            51.61,
        ),
    ),
    (
        "Sana",
        512,
        (
            51.03,
            54.68,
            127.46,
            67.84,
            147.00,
            172.32,
            163.14,
            49.23,
            44.60,
            49.80,
            199.45,
            88.52,
            141.99,
            46.51,
        ),
    ),
    (
        "LLM-CXR",
        256,
        (
            71.57,
            71.37,
            136.65,
            83.18,
            148.28,
            168.50,
            163.22,
            66.93,
            64.62,
            67.83,
            200.84,
            108.04,
            147.52,
            67.54,
        ),
    ),
    (
        "UniX",
        256,
        (
            63.34,
            63.39,
            129.32,
            73.88,
            150.25,
            177.68,
            165.88,
            58.31,
            60.58,
            58.55,
            201.53,
            105.96,
            141.63,
            57.61,
        ),
    ),
    (
        "UniX",
        512,
        (
            52.19,
            51.70,
            122.84,
            64.36,
            142.23,
            176.35,
            156.81,
            49.15,
            45.71,
            48.06,
            191.65,
            99.31,
            135.48,
            47.04,
        ),
    ),
)
