"""Figures are written as PNG at print resolution and as PDF; statistical plots draw the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from unixlib import viz
from unixlib.data.schema import LABELS
from unixlib.data.text.iu_mesh import agreement
from unixlib.viz.common import DPI
from unixlib.viz.data import label_shares


def _labels(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    values = rng.choice([1.0, -1.0, 0.0, np.nan], size=(n, len(LABELS)), p=[0.3, 0.1, 0.4, 0.2])
    return pd.DataFrame(values, columns=list(LABELS))


def _written(path) -> None:
    assert path.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    with Image.open(path) as png:
        dpi = png.info.get("dpi", (0, 0))
    assert dpi[0] == pytest.approx(DPI, abs=1), "PNG at print resolution"


def test_label_distribution_stacks_the_shares_of_each_class(tmp_path):
    frame = _labels()
    shares = label_shares(frame)
    assert shares.groupby("class")["share"].sum().to_numpy() == pytest.approx(1.0)
    pos = shares[(shares["class"] == LABELS[0]) & (shares["state"] == "positive")]["share"]
    assert pos.item() == pytest.approx((frame[LABELS[0]] == 1).mean())
    fig = viz.label_distribution(frame, tmp_path / "labels.png")
    _written(tmp_path / "labels.png")
    widths = sorted(p.get_width() for p in fig.axes[0].patches if p.get_width() > 0)
    assert max(widths) <= 1.0 and len(widths) >= len(LABELS)


def test_agreement_heatmap_shows_every_score(tmp_path):
    frame = _labels()
    pred = frame.copy()
    pred.iloc[:5] = 0.0
    table = agreement(pred, frame, classes=list(LABELS))
    fig = viz.label_agreement(table, tmp_path / "agree.png", title="labeler vs truth")
    _written(tmp_path / "agree.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 3 * len(table)
    assert texts[-1] == f"{table.loc['macro', 'f1']:.2f}"


class _Tokenizer:
    def encode_batch(self, texts):
        return [t.split() for t in texts]


def test_report_lengths_and_cleaning_status(tmp_path):
    raw = pd.Series(["a b c d", "a b c", None, "a b c d e f"])
    clean = pd.Series(["a b", "a", "", "a b c"])
    fig = viz.report_lengths(raw, clean, _Tokenizer(), tmp_path / "len.png")
    _written(tmp_path / "len.png")
    assert sum(p.get_height() for p in fig.axes[0].patches) == 3 + 3  # reports of each kind
    fig = viz.cleaning_status(pd.Series(["rules", "rules", "llm"]), tmp_path / "status.png")
    _written(tmp_path / "status.png")
    assert [p.get_width() for p in fig.axes[0].patches] == [2, 1]


# ---------------------------------------------------------------------------------------------
# Every figure fits a page: rendered on inputs sized like the smoke run and like the paper
# profile (more classes, arms, image sets and test columns), each saved PNG is at most
# 2,400 px wide (8 in at 300 dpi) and 3,200 px tall, and no text is set below 7 pt.

MAX_PX = (2400, 3200)
MIN_PT = 7.0
LONG_RAW = (
    "FINAL REPORT EXAMINATION: CHEST (PA AND LATERAL) INDICATION: ___ year old woman with "
    "shortness of breath // evaluate for interval change TECHNIQUE: Chest PA and lateral. "
    "COMPARISON: ___ FINDINGS: As compared to the previous radiograph, there is no relevant "
    "interval change. Small right pneumothorax, unchanged from the prior study. Acute fracture "
    "of the right fifth rib. No focal opacity. No evidence of pneumonia. Left-sided pacemaker "
    "with leads terminating in the right atrium and right ventricle. IMPRESSION: Small right "
    "pneumothorax. The right rib fracture has slightly improved compared to the prior study. "
)
CLEAN = (
    "FINDINGS: Small right pneumothorax. Acute fracture of the right fifth rib. No focal "
    "opacity. IMPRESSION: Small right pneumothorax. Left-sided pacemaker in standard position."
)
SIZES = {  # what grows from the smoke run to the paper profile
    "smoke": {"cols": 6, "sets": 4, "arms": 3, "seeds": 1, "raw": 1, "grid": (2, 2, 4)},
    "paper": {"cols": 10, "sets": 6, "arms": 5, "seeds": 2, "raw": 2, "grid": (24, 32, 16)},
}


def _images(n: int, size: int = 32, seed: int = 0) -> list[np.ndarray]:
    return list(np.random.default_rng(seed).random((n, size, size)))


SCALE = {"micro_f1": 100, "macro_f1": 100}  # the ablations store F1 in %


def _measured(arms: int, seeds: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    names = ["gen only (und frozen) 0:1", *[f"und + gen 1:{k}" for k in (1, 2, 4)]]
    names = [*names, "MoT cross-modal self-attention (paper)"][:arms]
    rng = np.random.default_rng(1)
    measures = ("micro_f1", "macro_f1", "fd", "kd", "alignment", "faithfulness", "step_seconds")
    rows = [
        {
            "study": "table5",
            "label": a,
            "seed": s,
            **{m: rng.random() * SCALE.get(m, 1) for m in measures},
        }
        for a in names
        for s in range(seeds)
    ]
    base = pd.DataFrame(
        {
            "label": [
                "baseline: most frequent report",
                "baseline: retrieval (nearest image)",
                "baseline: real validation images",
                "baseline: stage-2 checkpoint, no ablation training",
                "baseline: stage-2 checkpoint from shuffled reports",
            ],
            "micro_f1": [20.0, 50.0, np.nan, 70.0, np.nan],  # F1 in %, as the ablations store it
            "fd": [np.nan, np.nan, 1.0, 6.8, np.nan],
            "faithfulness": [np.nan, np.nan, np.nan, 0.99, -0.29],
        }
    )
    paper = {a: {"micro_f1": 40 + i, "fd": 60 + i} for i, a in enumerate(names)}
    return pd.DataFrame(rows), base, paper


def _fig2_plans(vit: int, latent: int):
    from unixlib.data.packing import SpecialTokens
    from unixlib.experiments.sequence_figure import example_packed_batches

    class Ex:
        def __init__(self, prompt: int, report: int) -> None:
            self.prompt_ids, self.report_ids = list(range(10, 10 + prompt)), [20] * report

    special = SpecialTokens(bos=1, eos=2, pad=0, boi=3, eoi=4)
    return example_packed_batches([Ex(12, 40), Ex(14, 60)], (vit, vit), (latent, latent), special)


def _cases(profile: str, tmp_path):
    """figure function name -> a call drawing it at ``profile``'s sizes (one or more figures),
    and the list the PNG paths are appended to as they are drawn."""
    from unixlib.experiments.sequence_figure import trainable_groups_by_stage
    from unixlib.viz import ablations, evaluation

    z = SIZES[profile]
    paths: list = []  # every PNG in the order drawn

    def out(name: str):
        paths.append(tmp_path / f"{profile}_{name}.png")
        return paths[-1]

    classes = list(LABELS)
    rng = np.random.default_rng(2)
    sets = ["real (validation)", "UniX stage 2", "UniX stage 3", "shuffled reports"]
    sets = [*sets, "unconditional", "UniX stage 3 (no CFG)"][: z["sets"]]
    methods = ["UniX (this run)", "most frequent report", "random report"]
    methods = [*methods, "retrieval (nearest image)", "UniX (paper weights)"][: z["arms"] + 1]
    per_class = pd.DataFrame({"class": classes, **{m: rng.random(14) for m in methods}})
    per_class["reference positives"] = rng.integers(0, 9, 14)
    faith = pd.DataFrame({"class": classes, **{c: rng.random(14) for c in FAITH_COLS}})
    measured, base, paper = _measured(z["arms"], z["seeds"])
    vit, latent, n_rows = z["grid"]
    curves = pd.DataFrame(
        [
            {"run": r, "seed": s, "step": t, "flow": 1 / (1 + t), "repa": 0.5 / (1 + t)}
            for r in ("on", "off")
            for s in range(z["seeds"])
            for t in range(0, 300, 10)
        ]
    )
    table = agreement(_labels(), _labels(), classes=classes)
    prompts = ["normal", "cardiomegaly + edema + effusions", "pneumothorax + pacemaker"] * 3
    return {
        "synth_gallery": lambda: viz.synth_gallery(
            {"normal": _images(4), **{c: _images(4) for c in classes[:-1]}}, out("gallery")
        ),
        "cleaning_examples": lambda: viz.cleaning_examples(
            [LONG_RAW * z["raw"]] * 4, [CLEAN] * 4, out("fig3")
        ),
        "cleaning_status": lambda: viz.cleaning_status(
            pd.Series(["rules"] * 9 + ["fallback:llm dropped a finding (pneumothorax) twice"]),
            out("status"),
        ),
        "label_distribution": lambda: viz.label_distribution(_labels(200), out("labels")),
        "label_agreement": lambda: viz.label_agreement(
            table, out("agree"), "Rule labeler vs SynthCXR truth", note=NOTE
        ),
        "report_lengths": lambda: viz.report_lengths(
            pd.Series([LONG_RAW] * 20), pd.Series([CLEAN] * 20), _Tokenizer(), out("lengths")
        ),
        "image_rows": lambda: [
            viz.image_rows(
                {f"step {k}": _images(z["cols"]) for k in range(4)},
                out("samples"),
                title="stage 2 samples (columns: test reports)",
            ),
            viz.image_rows({"real": _images(n_rows), "generated": _images(n_rows)}, out("unified")),
            viz.image_rows(
                {p: _images(5) for p in prompts[: 2 + z["sets"]]},
                out("fig4"),
                title="Fig. 4: prompted generations",
                col_titles=["SynthCXR", *[f"noise {k}" for k in range(4)]],
            ),
            viz.image_rows({s: _images(8) for s in sets}, out("generated")),
        ],
        "vae_reconstructions": lambda: viz.vae_reconstructions(
            np.stack(_images(8)), np.stack(_images(8, seed=1)), out("vae"), psnr=25.0
        ),
        "loss_curves": lambda: viz.loss_curves(
            curves[["step", "flow", "repa"]], out("loss"), "stage 2: flow and REPA"
        ),
        "fig2": lambda: viz.fig2(
            _fig2_plans(vit, latent), trainable_groups_by_stage(), out("fig2")
        ),
        "per_class_f1_chart": lambda: evaluation.per_class_f1_chart(
            per_class, methods, out("per_class")
        ),
        "per_pathology_fd_chart": lambda: evaluation.per_pathology_fd_chart(
            pd.DataFrame({"images": sets, **{c: rng.random(len(sets)) for c in classes}}),
            classes,
            out("per_pathology"),
        ),
        "fig1_summary": lambda: evaluation.fig1_summary(
            per_class.set_index("class")
            .iloc[: len(methods), :0]
            .assign(micro14_upos=0.5, macro14_upos=0.3)
            .set_axis(methods),
            pd.DataFrame({"images": sets, "FD": rng.random(len(sets))}),
            faith,
            {m: "baseline" for m in methods[1:]},
            out("fig1_summary"),
        ),
        "fig1_qualitative": lambda: evaluation.fig1_qualitative(
            [CLEAN] * 4, [LONG_RAW] * 4, np.stack(_images(4)), np.stack(_images(4)), out("fig1q")
        ),
        "study_chart": lambda: ablations.study_chart(
            measured, "table5", list(ablations.TITLES), base, out("table5"), "Table 5", paper
        ),
        "curves_chart": lambda: ablations.curves_chart(
            curves, {"on": "REPA on", "off": "REPA off"}, ("flow", "repa"), out("curves"), "REPA"
        ),
    }, paths


FAITH_COLS = ("auroc_real", "auroc_generated", "auroc_shuffled")
NOTE = "All 1.00 by construction: the synthetic reports use the labeler's own vocabulary."


def _figure_functions() -> set[str]:
    """Every public function of ``unixlib.viz`` that returns a Figure."""
    import inspect

    from unixlib.viz import ablations, architecture, data, evaluation, generation, training

    return {
        name
        for module in (ablations, architecture, data, evaluation, generation, training)
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if not name.startswith("_")
        and fn.__module__ == module.__name__
        and inspect.signature(fn).return_annotation in ("Figure", Figure)
    }


def test_every_figure_function_has_a_size_case(tmp_path):
    assert _figure_functions() == set(_cases("smoke", tmp_path)[0])


def _small_text(fig: Figure) -> list[str]:
    return [
        f"{t.get_text()!r} at {t.get_fontsize()} pt"
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_PT
    ]


def _overlapping_ticks(fig: Figure) -> list[str]:
    """Pairs of neighbouring tick labels of one axis whose boxes overlap (rotated labels are
    left out: their upright boxes overlap even when the text does not)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    clashes = []
    for ax in fig.axes:
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            shown = [t for t in labels if t.get_visible() and t.get_text() and not t.get_rotation()]
            boxes = [t.get_window_extent(renderer).shrunk(0.98, 0.98) for t in shown]
            clashes += [
                f"{shown[i].get_text()!r} / {shown[j].get_text()!r}"
                for i in range(len(boxes))
                for j in range(i + 1, len(boxes))
                if boxes[i].overlaps(boxes[j])
            ]
    return clashes


@pytest.mark.parametrize("profile", list(SIZES))
@pytest.mark.parametrize("name", sorted(_figure_functions()))
def test_figure_fits_a_page(name, profile, tmp_path):
    cases, pngs = _cases(profile, tmp_path)
    result = cases[name]()
    figures = result if isinstance(result, list) else [result]
    assert len(pngs) == len(figures) >= 1
    for fig, png in zip(figures, pngs, strict=True):
        _written(png)
        with Image.open(png) as image:
            width, height = image.size
        assert width <= MAX_PX[0] and height <= MAX_PX[1], f"{png.name}: {width} x {height} px"
        w_in, h_in = fig.get_size_inches()
        assert w_in <= MAX_PX[0] / DPI and h_in <= MAX_PX[1] / DPI, (w_in, h_in)
        assert not _small_text(fig), _small_text(fig)
        assert not _overlapping_ticks(fig), _overlapping_ticks(fig)


# ---------------------------------------------------------------------------------------------
# What each re-laid-out figure promises.


def test_per_class_f1_greys_exactly_the_classes_without_positives(tmp_path):
    from unixlib.viz.evaluation import ABSENT, per_class_f1_chart

    frame = pd.DataFrame({"class": ["edema", "lung_lesion", "fracture"], "UniX": [0.5, 0.0, 0.2]})
    frame["reference positives"] = [4, 0, 3]
    ax = per_class_f1_chart(frame, ["UniX"], tmp_path / "f1.png").axes[0]
    grey = [t.get_text() for t in ax.get_yticklabels() if t.get_color() == ABSENT]
    assert (
        grey == ["lung lesion"] and "grey: no positive test report (lung lesion)" in ax.get_title()
    )
    frame["reference positives"] = [4, 1, 3]  # every class has positives: nothing grey, no promise
    ax = per_class_f1_chart(frame, ["UniX"], tmp_path / "f1b.png").axes[0]
    assert "grey" not in ax.get_title()
    assert {t.get_color() for t in ax.get_yticklabels()} == {"black"}


def test_per_pathology_fd_draws_points_never_lines_across_classes(tmp_path):
    from unixlib.viz.evaluation import per_pathology_fd_chart

    table = pd.DataFrame({"images": ["UniX stage 2", "shuffled"], "edema": [2.0, 3.0]})
    table["cardiomegaly"] = [1.0, 4.0]
    ax = per_pathology_fd_chart(table, ["edema", "cardiomegaly"], tmp_path / "fd.png").axes[0]
    assert len(ax.collections) == 2  # one set of points per image set
    xs = sorted(float(x) for c in ax.collections for x in c.get_offsets()[:, 0])
    assert xs == [1.0, 2.0, 3.0, 4.0]
    for line in ax.get_lines():  # only the horizontal separators between class rows
        assert len(set(np.asarray(line.get_ydata(), float))) == 1


def test_study_chart_is_a_grid_with_whole_arm_names_and_one_legend(tmp_path):
    from unixlib.viz.ablations import ARM_CHARS, study_chart

    measured, base, paper = _measured(arms=5, seeds=2)
    measured.loc[measured["label"] == "und + gen 1:1", "label"] = LONG_ARM
    paper[LONG_ARM] = paper.pop("und + gen 1:1")
    measures = ["micro_f1", "macro_f1", "fd", "kd", "faithfulness"]
    fig = study_chart(measured, "table5", measures, base, tmp_path / "t5.png", "Table 5", paper)
    axes = fig.axes
    assert len(axes) == len(measures) + 2  # the two paper panels; empty grid cells removed
    assert len({round(ax.get_position().x0, 3) for ax in axes}) == 3  # three panels a row
    names = [t.get_text() for t in axes[0].get_yticklabels()]
    assert " ".join(names[1].split()) == LONG_ARM  # wrapped, every word kept
    assert max(len(line) for n in names for line in n.split("\n")) <= ARM_CHARS
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in axes)
    entries = [t.get_text().replace("\n", " ") for t in fig.legends[0].get_texts()]
    assert "baseline: most frequent report" in entries and "dot: one seed" in entries
    assert [t.get_text() for t in fig.legends[0].get_texts()].count("dot: one seed") == 1
    f1 = axes[0]  # drawn as stored (in %): bars are the seed means, lines the baselines
    widths = sorted(round(p.get_width(), 6) for p in f1.patches)
    means = measured.groupby("label")["micro_f1"].mean()
    assert widths == sorted(round(v, 6) for v in means) and f1.get_xlim()[1] <= 100
    assert sorted(float(line.get_xdata()[0]) for line in f1.get_lines()) == [20.0, 50.0, 70.0]


LONG_ARM = "und + gen 1:1 with shared weights and final-states conditioning (stacked VLM)"


def _columns(fig: Figure) -> set[float]:
    return {round(ax.get_position().x0, 4) for ax in fig.axes}


def test_image_rows_wraps_long_rows_into_bands_and_sets_many_rows_side_by_side(tmp_path):
    fig = viz.image_rows({"real": _images(16), "generated": _images(16)}, tmp_path / "w.png")
    assert len(fig.axes) == 32 and len(_columns(fig)) == 8  # two bands of 8 columns
    titles = sorted(t.get_text() for t in fig.texts)
    assert titles == sorted(f"#{i}" for i in range(1, 17))  # the columns numbered per band
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["real", "generated", "real", "generated"]  # every band has row titles
    fig = viz.image_rows({f"row {k}": _images(3) for k in range(14)}, tmp_path / "g.png")
    assert len(fig.axes) == 42 and len(_columns(fig)) == 6  # two groups of 3 columns
    fig = viz.image_rows({"a": _images(3), "b": _images(1)}, tmp_path / "r.png")
    assert len(fig.axes) == 4  # rows may differ in length: no empty axes


def test_label_agreement_note_and_cleaning_examples_keep_all_text(tmp_path):
    frame = _labels()
    table = agreement(frame, frame, classes=list(LABELS))
    fig = viz.label_agreement(table, tmp_path / "a.png", "Rule labeler vs truth", note=NOTE)
    assert " ".join(fig.axes[0].get_title().split()) == NOTE
    assert fig.get_suptitle() == "Rule labeler vs truth"
    raw = "FINAL REPORT\n EXAMINATION:  Chest.\n\n FINDINGS: " + "No effusion. " * 30
    fig = viz.cleaning_examples([raw], ["No effusion."], tmp_path / "c.png")
    shown = [" ".join(t.get_text().split()) for ax in fig.axes for t in ax.texts]
    assert shown == [" ".join(raw.split()), "No effusion."]
