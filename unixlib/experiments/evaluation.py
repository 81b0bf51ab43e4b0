"""The evaluation of one run, step by step: what notebook 05 and ``python -m unixlib evaluate``
both call.

    load_inputs            the test split (references, labels, images), train/validation images,
                           and Table 2's rows (the same test rows, or the paper's own
                           understanding test set when notebook 01 wrote one)
    build_encoders         reference encoders trained on the train split (cached), or local weights
    understanding          reports of the model and of the baselines -> Table 2, NLG, per-class F1
    generate_sets          images of the stage-2 / stage-3 models, shuffled and unconditional
    generation             Table 3, Table 4, finding faithfulness

(:mod:`.evaluation_inputs` holds the first two and the settings; :mod:`.evaluation_outputs`
writes what these return.)

Everything is computed on the same test rows in the same run, so every model number stands
beside its baselines. One exception, as in the paper: with the official release's
``test_data.json`` (``release-eval``; ``data/sources/understanding_test.py``) Table 2 is on
those 2,365 pairs, each image prompted with its own instruction and judged against its own
reference, while Tables 3-4 stay on the LLaVA-Rad annotation test split. Otherwise Table 2's
rows are the test rows, prompted with ``EVAL_PROMPT`` and judged against their cleaned reports.
"""

from __future__ import annotations

import time

import numpy as np

from unixlib.config.progress import bar
from unixlib.eval import baselines, image_eval, report_eval
from unixlib.eval.encoders import PretrainedImageEncoder
from unixlib.experiments import evaluators, generation_tables, understanding_tables
from unixlib.experiments.evaluation_inputs import (
    ALWAYS,
    MODEL,
    RANDOM,
    REAL_TEST,
    REAL_VAL,
    RETRIEVAL,
    SHUFFLED,
    UNCONDITIONAL,
    Encoders,
    EvalInputs,
    EvalSettings,
    build_encoders,
    labeler_of,
    load_inputs,
    load_models,
    sampler_note,
    understanding_rows,
)
from unixlib.experiments.samples import generate_images, generate_reports
from unixlib.model.unix import UniX

__all__ = [
    "ALWAYS",
    "MODEL",
    "RANDOM",
    "REAL_TEST",
    "REAL_VAL",
    "RETRIEVAL",
    "SHUFFLED",
    "UNCONDITIONAL",
    "Encoders",
    "EvalInputs",
    "EvalSettings",
    "build_encoders",
    "generate_sets",
    "generation",
    "labeler_of",
    "load_inputs",
    "load_models",
    "sampler_note",
    "understanding",
    "understanding_rows",
]


def understanding(
    model: UniX, inputs: EvalInputs, encoders: Encoders, s: EvalSettings
) -> dict[str, object]:
    """Reports of the model and the three baselines for every image of Table 2's rows
    (``inputs.und``: each prompted with its row's instruction), and their tables."""
    t0 = time.perf_counter()
    und = inputs.und
    references, prompts = und["reference"].tolist(), und["prompt"].tolist()
    with evaluators.sample_autocast(s.sample_dtype, model):
        written = generate_reports(
            model,
            inputs.und_images(model.config.image_size_und, s.und_preprocess),
            inputs.tokenizer,
            s.max_new_tokens,
            prompt=prompts,
            batch_size=s.batch_size,
        )
    train = inputs.split_rows("train")
    train_reports = train["report_clean"].tolist()
    size = s.encoder.image_size
    retrieved = baselines.retrieval_reports(
        encoders.fixed("reference_features", inputs.images("train", size)),
        train_reports,
        encoders.fixed("reference_features", inputs.und_images(size)),
    )
    n = len(references)
    methods = {
        MODEL: written,
        ALWAYS: [baselines.most_frequent_report(train_reports)] * n,
        RANDOM: baselines.random_reports(train_reports, n, s.seed),
        RETRIEVAL: retrieved,
    }
    kinds = {name: ("model" if name.startswith("UniX") else "baseline") for name in methods}
    labeler, labeler_name = labeler_of(s)
    label = report_eval.memoized(labeler)  # each distinct text labelled once, for every table
    scores = report_eval.score_methods(references, methods, label)
    rows = report_eval.report_rows(references, methods, label)
    r = s.resampling
    table2, quoted = understanding_tables.table2(rows, kinds, labeler_name, r)
    baseline_names = [m for m in methods if kinds[m] == "baseline"]
    comparisons, verdicts = understanding_tables.compare(rows, MODEL, baseline_names, r=r)
    annotator = evaluators.radgraph_annotator(s)
    radgraph = evaluators.radgraph_f1(annotator, references, methods) if annotator else {}
    return {
        "methods": methods,  # name -> one report per row of inputs.und
        "scores": scores,  # every number on the whole test set (fractions)
        "rows": rows,  # per-study labels and scores (what the intervals resample)
        "table2": table2,
        "table2_quoted": quoted,
        "comparisons": comparisons,
        "verdicts": verdicts,
        "nlg": understanding_tables.nlg_table(rows, scores, kinds, r, radgraph),
        "radgraph": radgraph,  # method -> (N,) RadGraph F1 per row ({} without its weights)
        "per_class": understanding_tables.per_class_f1(rows, r),
        "labeler": labeler_name,
        "test_set": inputs.und_set,
        "seconds": time.perf_counter() - t0,
    }


def generate_sets(
    models: dict[int, UniX], inputs: EvalInputs, s: EvalSettings
) -> dict[str, np.ndarray]:
    """(N, H, W) images per set, row i made for test row i: each stage's model from the test
    rows' generation prompts (``inputs.prompts``; at the size and with the sampler of its
    checkpoint); the last stage's from shuffled prompts and unconditionally. With
    ``generated_pixels="release"`` the sets also keep the release's 8-bit RGB
    (:class:`evaluators.ImageSets`)."""
    if s.generated_pixels not in evaluators.GENERATED_PIXELS:
        raise ValueError(f"generated_pixels must be one of {evaluators.GENERATED_PIXELS}")
    kw = dict(seed=s.seed, batch_size=s.batch_size, max_report_tokens=s.max_report_tokens)
    kw["release_pixels"] = s.generated_pixels == "release"
    sets = evaluators.ImageSets()  # gray, and the release's 8-bit RGB when asked for
    last = models[max(models)]
    with evaluators.sample_autocast(s.sample_dtype, last):
        for stage, model in models.items():
            images = generate_images(model, inputs.prompts, inputs.tokenizer, **kw)
            sets.add(f"UniX stage {stage}", images)
        shuffled = baselines.shuffled_reports(inputs.prompts, s.seed)
        sets.add(SHUFFLED, generate_images(last, shuffled, inputs.tokenizer, **kw))
        # Without a report the conditional and unconditional velocities are the same forward
        # ([bos, boi] either way), so guidance is the identity: scale 1 gives the same images
        # at half the cost.
        blank = [""] * len(inputs.prompts)
        uncond = generate_images(last, blank, inputs.tokenizer, cfg_scale=1.0, **kw)
        sets.add(UNCONDITIONAL, uncond)
    return sets


def generation(
    sets: dict[str, np.ndarray], inputs: EvalInputs, encoders: Encoders, s: EvalSettings
) -> dict[str, object]:
    """Tables 3 and 4, the real-image reference, the paired comparisons and finding
    faithfulness for the generated sets, against the real test images of the same rows (read
    for the features at :func:`evaluators.feature_image_size`: no smaller than the generated)."""
    size = s.encoder.image_size
    real = inputs.images("test", size, s.n_test)
    res = {name: images.shape[-1] for name, images in sets.items()}  # generated size, px
    feature_size = evaluators.feature_image_size(s, encoders.features, res)
    real_features_in = inputs.images("test", feature_size, s.n_test)
    # the pretrained encoders read the generations as the release saved them, when it did
    scored = {k: getattr(sets, "rgb", {}).get(k, v) for k, v in sets.items()}
    pretrained = isinstance(encoders.features, PretrainedImageEncoder)
    feature_in = scored if pretrained else sets
    feats = {k: encoders.feats(v) for k, v in bar(feature_in.items(), desc="features")}
    real_feats = encoders.fixed("features", real_features_in)
    bio = evaluators.biovil(s)
    if bio is not None:  # the paper's alignment: BioViL-T, CheXGenBench's per-image rounding
        align = evaluators.biovil_alignment(
            bio, {**scored, REAL_TEST: real_features_in}, inputs.prompts
        )
    else:
        text = encoders.reference.text_embed(inputs.prompts)
        embeds = {k: encoders.reference.image_embed(v) for k, v in sets.items()}
        embeds[REAL_TEST] = encoders.fixed("embed", real)
        align = {k: image_eval.alignment_rows(e, text) for k, e in embeds.items()}
    last = max(k for k in sets if k.startswith("UniX stage"))
    name, r = encoders.features.name, s.resampling
    probs = {k: encoders.reference.image_probs(v) for k, v in sets.items()}
    probs[REAL_TEST] = encoders.fixed("probs", real)
    faith = image_eval.faithfulness_table(probs, inputs.labels, last, REAL_TEST, SHUFFLED)
    sets_of = {"auroc_generated": last, "auroc_real": REAL_TEST, "auroc_shuffled": SHUFFLED}
    faith = generation_tables.faithfulness_intervals(
        faith, probs, inputs.labels, sets_of, s.resampling
    )
    mean_row = faith[faith["class"] == "mean"].iloc[0]
    table3, quoted3 = generation_tables.table3(real_feats, feats, align, res, name, s.n_shards, r)
    table4, quoted4 = generation_tables.table4(real_feats, feats, inputs.labels, res, name, r)
    pairs = [(last, SHUFFLED), (last, UNCONDITIONAL)]
    pairs += [(k, last) for k in sets if k.startswith("UniX stage") and k != last]
    comparisons, verdicts = generation_tables.compare(real_feats, feats, align, pairs, r)
    return {
        "table3": table3,
        "table3_quoted": quoted3,
        "real_reference": generation_tables.real_reference(real_feats, feats, seed=s.seed),
        "comparisons": comparisons,
        "verdicts": verdicts,
        "table4": table4,
        "table4_quoted": quoted4,
        "faithfulness": faith,
        "faithfulness_mean": image_eval.mean_fraction(faith, image_eval.FAITHFULNESS_CLASSES),
        # the headline: every class the classifier can judge on real images (the mean row)
        "faithfulness_all": float(mean_row["fraction_of_the_way"]),
        "faithfulness_all_interval": (
            float(mean_row["fraction_of_the_way_low"]),
            float(mean_row["fraction_of_the_way_high"]),
        ),
        "alignment": {k: float(v.mean()) for k, v in align.items()},
        "alignment_encoder": "BioViL-T" if bio is not None else evaluators.REFERENCE_ALIGNMENT,
        "real_image_size": feature_size,  # px the real images were read at for the features
        # Table 3's numbers per shard, their mean (the paper's) and pooled, both reported
        "shards": generation_tables.shard_table(real_feats, feats, s.n_shards, s.seed),
        "encoder": name,
        "features": {REAL_TEST: real_feats, **feats},  # (N, F) per set, row i = study i
    }
