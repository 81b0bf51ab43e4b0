"""Writing the evaluation's tables and figures, and the whole evaluation in one call.

Notebook 05 calls the ``save_*`` functions step by step (and shows what they return);
``python -m unixlib evaluate`` calls :func:`evaluate_run`, which runs the same steps in the same
order, so both write the same files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from unixlib import viz
from unixlib.config import project_path
from unixlib.data.datasets import ReportImageDataset, load_image
from unixlib.data.packing import SpecialTokens
from unixlib.eval import image_eval
from unixlib.experiments import evaluation as pipeline
from unixlib.experiments import hyperparams, paper_rows, sequence_figure, understanding_tables
from unixlib.experiments.evaluation import EvalInputs, EvalSettings
from unixlib.model.unix import UniX
from unixlib.viz import evaluation as eval_viz
from unixlib.viz import tables
from unixlib.viz.tables import SOURCE_COL, THIS_RUN


def save_table1_fig2(s: EvalSettings, inputs: EvalInputs, model: UniX, out: Path) -> pd.DataFrame:
    """Table 1 (this run's stage configs beside the paper's) and Fig. 2 (one real packed
    sequence per task, its attention mask, the groups each stage trains)."""
    table1 = hyperparams.training_table(project_path(s.run_dir))
    caption = "Table 1: training settings per stage, this run (its config.json) vs the paper"
    tables.save_table(table1, out, "table1_training", caption=caption)
    mc = model.config
    data = ReportImageDataset(
        inputs.frame,
        inputs.root,
        inputs.tokenizer,
        "train",
        8,
        "und",
        max_report_tokens=s.max_report_tokens,
        seed=s.seed,
    )
    g = mc.latent_grid(mc.image_size_gen)
    plans = sequence_figure.example_packed_batches(
        [data.example(i) for i in range(min(4, len(data)))],
        (mc.vit_grid, mc.vit_grid),
        (g, g),
        SpecialTokens.from_mapping(mc.special_ids()),
    )
    viz.fig2(plans, sequence_figure.trainable_groups_by_stage(), out / "fig2_sequences.png")
    return table1


def save_encoders(enc: pipeline.Encoders, out: Path) -> pd.DataFrame:
    """``table_reference_encoders``: what the reference encoders can see on the test split."""
    rows = [
        {"measure": f"AUROC {r['class']}", "value": r["auroc"], "n_pos": r["n_pos"], "chance": 0.5}
        for _, r in enc.quality.iterrows()
    ]
    for key in ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5"):
        chance = enc.retrieval["chance_r1" if key.endswith("r1") else "chance_r5"]
        rows.append(
            {
                "measure": f"retrieval {key}",
                "value": enc.retrieval[key],
                "n_pos": np.nan,
                "chance": chance,
            }
        )
    frame = pd.DataFrame(rows).astype({"n_pos": "Int64"})
    frame.insert(0, "encoder", enc.reference.name)
    caption = (
        f"Reference encoders on the test split (classifier AUROC per class; contrastive "
        f"retrieval recall among the test pairs). FD/KD/PRDC features: {enc.features.name}"
    )
    tables.save_table(frame, out, "table_reference_encoders", caption=caption)
    return frame


def save_understanding(u: dict, out: Path) -> list[str]:
    """Table 2, the NLG table, per-class F1 (table and chart); returns the verdict sentences."""
    caption = (
        f"Table 2: report generation, CheXbert-style F1 (%) on {u['test_set']}, this run's "
        "model beside trivial baselines (same pairs, same labeler) and the paper's rows"
    )
    tables.save_table(u["table2"], out, "table2_understanding", caption=caption, floatfmt=".1f")
    tables.save_table(u["nlg"], out, "table_nlg", caption="Report generation: NLG metrics")
    tables.save_table(u["per_class"], out, "per_class_f1", caption="Per-class F1 (u = positive)")
    eval_viz.per_class_f1_chart(u["per_class"], list(u["methods"]), out / "per_class_f1.png")
    baselines = [m for m in u["methods"] if not m.startswith("UniX")]
    keys = ("micro14_upos", "macro14_upos", "micro5_upos", "macro5_upos", "bleu4", "cider")
    return understanding_tables.beats_baselines(u["scores"], "UniX (this run)", baselines, keys)


def save_generation(g: dict, out: Path) -> None:
    """Table 3, Table 4, finding faithfulness, and the per-pathology FD chart."""
    caption = (
        "Table 3: generation on the test split (features and alignment from the named "
        "encoder), with real validation images (floor), shuffled reports and unconditional "
        "samples (baselines), and the paper's rows"
    )
    tables.save_table(g["table3"], out, "table3_generation", caption=caption)
    if "shards" in g:
        caption = (
            "Table 3 per shard: FD, KD and PRDC on each consecutive shard of the test set, their "
            "mean (the paper's reported number) and the whole test set pooled"
        )
        tables.save_table(g["shards"], out, "table3_shards", caption=caption)
    caption = "Table 4: FD per pathology (real positives vs images of their reports)"
    tables.save_table(g["table4"], out, "table4_per_pathology", caption=caption, floatfmt=".2f")
    caption = (
        "Finding faithfulness: reference classifier AUROC vs the prompting reports' "
        "labels, on generated images, real test images (ceiling), shuffled-report images"
    )
    tables.save_table(g["faithfulness"], out, "table_generation_faithfulness", caption=caption)
    ours = g["table4"][(g["table4"][SOURCE_COL] == THIS_RUN) & (g["table4"]["res"].notna())]
    classes = [c for c in paper_rows.TABLE4_ORDER if ours[c].notna().any()]
    eval_viz.per_pathology_fd_chart(ours, classes, out / "per_pathology_fd.png")


def save_fig1(u: dict, g: dict, inputs: EvalInputs, sets: dict, out: Path, n: int = 4) -> None:
    """Fig. 1: the summary chart across tasks and the qualitative panel."""
    kinds = {m: ("model" if m.startswith("UniX") else "baseline") for m in u["methods"]}
    kinds.update(
        {
            pipeline.REAL_VAL: "reference",
            pipeline.SHUFFLED: "baseline",
            pipeline.UNCONDITIONAL: "baseline",
        }
    )
    t3 = g["table3"]
    whole = t3[(t3[SOURCE_COL] == THIS_RUN) & (t3["protocol"] == "whole test set")]
    eval_viz.fig1_summary(u["scores"], whole, g["faithfulness"], kinds, out / "fig1_summary.png")
    model = max(k for k in sets if k.startswith("UniX stage"))  # the last stage's images
    size = sets[model].shape[-1]
    cases = qualitative_cases(inputs, n)
    if not cases:
        print("fig1_qualitative skipped: no image is in both Table 2's and the generation's rows")
        return
    und_rows, gen_rows = (list(c) for c in zip(*cases, strict=True))
    paths = inputs.test["image_path"].iloc[gen_rows]
    real = torch.stack([load_image(inputs.root / p, size) for p in paths])[:, 0].numpy()
    eval_viz.fig1_qualitative(
        inputs.und["reference"].iloc[und_rows].tolist(),
        [u["methods"]["UniX (this run)"][i] for i in und_rows],
        real,
        sets[model][gen_rows],
        out / "fig1_qualitative.png",
    )


def qualitative_cases(inputs: EvalInputs, n: int) -> list[tuple[int, int]]:
    """(row of ``inputs.und``, row of ``inputs.test``) of the first ``n`` images in both: the
    same rows when Table 2 is on the test split, else the images both test sets share."""
    und_row = {i: k for k, i in enumerate(inputs.und["id"])}
    both = [(und_row[i], k) for k, i in enumerate(inputs.test["id"]) if i in und_row]
    return both[:n]


def save_summary(
    verdicts: list[str], u: dict, g: dict, out: Path, seconds: float | None = None
) -> dict:
    """``evaluation_summary.json``: the headline numbers and the verdicts against baselines."""
    model = u["scores"].loc["UniX (this run)"]
    summary = {
        "verdicts": verdicts,
        "understanding": {
            k: float(model[k])
            for k in ("micro14_upos", "macro14_upos", "micro5_upos", "macro5_upos", "distinct")
        },
        "faithfulness_mean": g["faithfulness_mean"],
        "faithfulness_classes": list(image_eval.FAITHFULNESS_CLASSES),
        "alignment": g["alignment"],
        "seconds": None if seconds is None else round(seconds, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def save_generated(
    out_dir: Path, inputs: EvalInputs, methods: dict[str, list[str]], sets: dict[str, np.ndarray]
) -> list[Path]:
    """``generated_reports.csv`` (Table 2's rows: id, prompt, reference, one column per method),
    ``generated_images.npz`` (one (N, H, W) uint8 array per set, plus the row ids) and
    ``generated_images.png`` (the first 8 images of every set), for rescoring elsewhere."""
    out_dir.mkdir(parents=True, exist_ok=True)
    und = inputs.und
    reports = pd.DataFrame(
        {"id": und["id"], "prompt": und["prompt"], "reference": und["reference"], **methods}
    )
    csv = out_dir / "generated_reports.csv"
    reports.to_csv(csv, index=False)
    npz = out_dir / "generated_images.npz"
    arrays = {k.replace(" ", "_"): (v * 255).round().astype(np.uint8) for k, v in sets.items()}
    np.savez_compressed(npz, ids=inputs.test["id"].to_numpy(dtype=str), **arrays)
    png = out_dir / "generated_images.png"
    viz.image_rows(
        {k: list(v[:8]) for k, v in sets.items()},
        png,
        title="Generated images (columns: the first test reports)",
    )
    return [csv, npz, png]


def evaluate_run(s: EvalSettings, out: Path, device: str = "auto") -> dict:
    """Every step of notebook 05 without the notebook: tables, figures, generated samples."""
    t0 = time.perf_counter()
    out = Path(out)
    torch.manual_seed(s.seed)
    inputs = pipeline.load_inputs(s)
    models = pipeline.load_models(s, device)
    save_table1_fig2(s, inputs, models[max(models)], out)
    enc = pipeline.build_encoders(inputs, s)
    save_encoders(enc, out)
    u = pipeline.understanding(models[max(models)], inputs, enc, s)
    verdicts = save_understanding(u, out)
    sets = pipeline.generate_sets(models, inputs, s)
    g = pipeline.generation(sets, inputs, enc, s)
    save_generation(g, out)
    save_fig1(u, g, inputs, sets, out)
    save_generated(out, inputs, u["methods"], sets)
    return save_summary(verdicts, u, g, out, seconds=time.perf_counter() - t0)
