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
from matplotlib.figure import Figure

from unixlib import viz
from unixlib.config import project_path
from unixlib.data.datasets import ReportImageDataset, load_image
from unixlib.data.packing import SpecialTokens
from unixlib.eval import image_eval
from unixlib.experiments import evaluation as pipeline
from unixlib.experiments import (
    generation_tables,
    headlines,
    hyperparams,
    paper_rows,
    sequence_figure,
    understanding_tables,
)
from unixlib.experiments.evaluation import EvalInputs, EvalSettings
from unixlib.model.unix import UniX, parameter_counts
from unixlib.viz import evaluation as eval_viz
from unixlib.viz import tables
from unixlib.viz.tables import SOURCE_COL, THIS_RUN


def save_table1_fig2(
    s: EvalSettings, inputs: EvalInputs, model: UniX, out: Path
) -> tuple[pd.DataFrame, Figure]:
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
    fig = viz.fig2(plans, sequence_figure.trainable_groups_by_stage(), out / "fig2_sequences.png")
    return table1, fig


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


def save_understanding(u: dict, inputs: EvalInputs, out: Path) -> list[str]:
    """Table 2 (with the paper's rows as a quoted block), the model-vs-baseline comparisons,
    the NLG table, per-class F1 (table and chart); returns the verdict sentences."""
    n = len(inputs.und)
    where = f"{u['test_set']} ({n} studies), {u['labeler']}; {inputs.scale}"
    caption = (
        f"Table 2: report generation, CheXbert-style F1 (%) with 95% bootstrap intervals over "
        f"studies; {where}. This run's model beside trivial baselines on the same pairs"
    )
    tables.save_table(
        u["table2"], out, "table2_understanding", caption, ".1f", quoted=u["table2_quoted"]
    )
    caption = (
        f"Table 2 comparisons: the model minus each baseline on the same studies (paired "
        f"bootstrap, F1 as fractions); {where}"
    )
    tables.save_table(u["comparisons"], out, "table2_comparisons", caption, ".4f")
    caption = (
        "Report generation, NLG metrics with 95% bootstrap intervals (BLEU on resampled "
        f"n-gram counts, CIDEr-D with the test set's idf; distinct: a count); {where}"
    )
    tables.save_table(u["nlg"], out, "table_nlg", caption)
    caption = f"Per-class F1 (u = positive) with 95% intervals; {where}"
    tables.save_table(u["per_class"], out, "per_class_f1", caption)
    eval_viz.per_class_f1_chart(u["per_class"], list(u["methods"]), out / "per_class_f1.png")
    return list(u["verdicts"])


def save_generation(g: dict, inputs: EvalInputs, out: Path, sampler: str = "") -> list[str]:
    """Table 3 (the paper's rows as a quoted block), the real-image reference, the paired
    comparisons, Table 4, finding faithfulness and the per-pathology FD chart; returns the
    comparisons' verdict sentences."""
    n = len(inputs.test)
    where = f"{n} test studies, features of {g['encoder']}; {inputs.scale}" + (
        f"; sampler: {sampler}" if sampler else ""
    )
    caption = (
        "Table 3: generation, each set against the real test images of the same studies, with "
        "95% bootstrap intervals over studies (FD, KD, PRDC centred; the shard rows redraw each "
        f"shard from its own studies); {generation_tables.KD_NOTE}; {where}"
    )
    tables.save_table(g["table3"], out, "table3_generation", caption, quoted=g["table3_quoted"])
    if "shards" in g:
        caption = (
            "Table 3 per shard: FD, KD and PRDC on each consecutive shard of the test set, their "
            f"mean (the paper's reported number) and the whole test set pooled; {where}"
        )
        tables.save_table(g["shards"], out, "table3_shards", caption)
    caption = (
        "Real-image reference: the test studies split into two disjoint halves, real images of "
        "one half against the real (or generated) images of the other; mean, min and max over "
        f"the splits (FD grows as samples shrink: compare rows of this table only); {where}"
    )
    tables.save_table(g["real_reference"], out, "table3_real_reference", caption)
    caption = f"Table 3 comparisons: paired over the same studies (A minus B); {where}"
    tables.save_table(g["comparisons"], out, "table3_comparisons", caption, ".4f")
    caption = (
        "Table 4: FD per pathology, real test images positive for the class vs the images made "
        f"from their reports (n = positives), with 95% centred bootstrap intervals; {where}"
    )
    tables.save_table(
        g["table4"], out, "table4_per_pathology", caption, ".2f", quoted=g["table4_quoted"]
    )
    caption = (
        "Finding faithfulness: reference classifier AUROC against the prompting reports' labels "
        "on generated images, real test images (ceiling) and shuffled-report images (chance); "
        f"{where}"
    )
    tables.save_table(g["faithfulness"], out, "table_generation_faithfulness", caption)
    return list(g["verdicts"])


def save_pathology_chart(g: dict, out: Path) -> Figure:
    """``per_pathology_fd.png``: Table 4's FD per class and image set."""
    wide = g["table4"].pivot_table(index=["images", "res"], columns="class", values="FD")
    wide = wide.reset_index()
    classes = [c for c in paper_rows.TABLE4_ORDER if c in wide and wide[c].notna().any()]
    return eval_viz.per_pathology_fd_chart(wide, classes, out / "per_pathology_fd.png")


def save_fig1(
    u: dict, g: dict, inputs: EvalInputs, sets: dict, out: Path, n: int = 4
) -> tuple[Figure, Figure | None]:
    """Fig. 1: the summary chart across tasks and the qualitative panel (None when no image is
    in both Table 2's and the generation's rows)."""
    kinds = {m: ("model" if m.startswith("UniX") else "baseline") for m in u["methods"]}
    kinds.update({pipeline.SHUFFLED: "baseline", pipeline.UNCONDITIONAL: "baseline"})
    t3 = g["table3"]
    whole = t3[(t3[SOURCE_COL] == THIS_RUN) & (t3["protocol"] == "whole test set")]
    summary = eval_viz.fig1_summary(
        u["scores"], whole, g["faithfulness"], kinds, out / "fig1_summary.png"
    )
    model = max(k for k in sets if k.startswith("UniX stage"))  # the last stage's images
    size = sets[model].shape[-1]
    cases = qualitative_cases(inputs, n)
    if not cases:
        print("fig1_qualitative skipped: no image is in both Table 2's and the generation's rows")
        return summary, None
    und_rows, gen_rows = (list(c) for c in zip(*cases, strict=True))
    paths = inputs.test["image_path"].iloc[gen_rows]
    real = torch.stack([load_image(inputs.root / p, size) for p in paths])[:, 0].numpy()
    return summary, eval_viz.fig1_qualitative(
        inputs.und["reference"].iloc[und_rows].tolist(),
        [u["methods"][pipeline.MODEL][i] for i in und_rows],
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
    """``evaluation_summary.json``: the headline numbers with their intervals, and every
    verdict (model vs baselines, paired over the same studies)."""
    t2 = u["table2"].set_index("method").loc[pipeline.MODEL]
    headline = {}
    for column in understanding_tables.COMPARED:
        headline[column] = {k: float(t2[f"{column}{s}"]) / 100 for k, s in _PARTS.items()}
    summary = {
        "verdicts": verdicts,
        "understanding": headline,
        "distinct": float(u["scores"].at[pipeline.MODEL, "distinct"]),
        "faithfulness_all_classes": g["faithfulness_all"],
        "faithfulness_all_classes_interval": list(g["faithfulness_all_interval"]),
        "faithfulness_5_classes": g["faithfulness_mean"],
        "faithfulness_classes_5": list(image_eval.FAITHFULNESS_CLASSES),
        "alignment": g["alignment"],
        "seconds": None if seconds is None else round(seconds, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


_PARTS = {"value": "", "low": "_low", "high": "_high"}


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


def evaluate_run(s: EvalSettings, out: Path, device: str = "auto", fail_fast: bool = False) -> dict:
    """Every step of notebook 05 without the notebook: tables, figures, generated samples,
    and ``rejects.csv``: the test studies dropped because their image cannot be read (with
    ``fail_fast`` the first one raises). The summary's ``rejected`` counts them."""
    t0 = time.perf_counter()
    out = Path(out)
    torch.manual_seed(s.seed)
    inputs = pipeline.load_inputs(s, fail_fast)
    inputs.rejects.write(out)
    models = pipeline.load_models(s, device)
    save_table1_fig2(s, inputs, models[max(models)], out)
    enc = pipeline.build_encoders(inputs, s)
    save_encoders(enc, out)
    u = pipeline.understanding(models[max(models)], inputs, enc, s)
    verdicts = save_understanding(u, inputs, out)
    sets = pipeline.generate_sets(models, inputs, s)
    g = pipeline.generation(sets, inputs, enc, s)
    verdicts += save_generation(g, inputs, out, pipeline.sampler_note(models[max(models)], s))
    save_pathology_chart(g, out)
    save_fig1(u, g, inputs, sets, out)
    save_headlines(u, g, models[max(models)], inputs, out)
    save_generated(out, inputs, u["methods"], sets)
    summary = save_summary(verdicts, u, g, out, seconds=time.perf_counter() - t0)
    return {**summary, "rejected": len(inputs.rejects)}


def save_headlines(
    u: dict, g: dict, model: UniX, inputs: EvalInputs, out: Path
) -> tuple[pd.DataFrame, list[str], Figure]:
    """The paper's three headline claims recomputed from its quoted rows, beside the same
    formulas on this run's numbers (``headlines.csv``), and Fig. 1's cross-model comparison
    (score against parameter count: ``fig1_comparison.png``)."""
    t2 = u["table2"].set_index("method")
    micro = float(t2.at[pipeline.MODEL, "micro14 (u=pos)"])
    t3 = g["table3"]
    last = max(n for n in t3["images"] if str(n).startswith("UniX stage"))
    shard_rows = t3[(t3["images"] == last) & t3["protocol"].str.startswith("mean of")]
    fd = float(shard_rows["FD"].iloc[0]) if len(shard_rows) else None
    counts = parameter_counts(model.config)
    params = (counts["parameters_total"] - counts["vae"]) / 1e9
    setting = f"this run ({inputs.scale}; {u['labeler']}, {g['encoder']} features)"
    frame, sentences = headlines.headlines(micro, fd, params, setting)
    caption = "The paper's headline claims: its formula on its quoted rows, and on this run's"
    tables.save_table(frame, out, "headlines", caption, ".3g")
    data = headlines.comparison(micro, fd, params, label="this run")
    title = f"Fig. 1 (models): score against parameters; this run: {inputs.scale}"
    fig = viz.fig1_comparison(data, out / "fig1_comparison.png", title)
    return frame, sentences, fig
