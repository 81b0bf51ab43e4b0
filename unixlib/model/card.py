"""The model card (``README.md``) of a saved model directory.

Short and factual: what the model is, what it was trained on and how (from the training
config of the stage that wrote it), how to use it, and notebook 05's headline metrics when the
run has them (``evaluation_summary.json``, see ``unixlib.experiments.evaluation_outputs.save_summary``).
"""

from __future__ import annotations

from typing import Any

from unixlib.model.config import UniXConfig

TRAINING_KEYS = (
    "profile",
    "stage",
    "preset",
    "data_dir",
    "train_rows",
    "image_size",
    "steps",
    "batch_size",
    "grad_accum",
    "lr",
    "seed",
    "ema_decay",
    "precision",
    "run_dir",
)


def _metrics_section(summary: dict[str, Any]) -> list[str]:
    lines = ["## Evaluation (notebook 05)", "", "| measure | value |", "|---|---|"]
    for key, value in summary.get("understanding", {}).items():
        lines.append(f"| {key} (report F1 / diversity) | {value:.3f} |")
    if summary.get("faithfulness_mean") is not None:
        classes = ", ".join(summary.get("faithfulness_classes", []))
        lines.append(
            f"| image finding faithfulness ({classes}) | {summary['faithfulness_mean']:.3f} |"
        )
    for name, value in summary.get("alignment", {}).items():
        lines.append(f"| alignment: {name} | {value:.3f} |")
    verdicts = summary.get("verdicts", [])
    return lines + ([""] + [f"- {v}" for v in verdicts] if verdicts else [])


def model_card(
    config: UniXConfig,
    training: dict[str, Any] | None = None,
    evaluation: dict[str, Any] | None = None,
) -> str:
    """Markdown of the card; ``training`` keys as :data:`TRAINING_KEYS` (any subset),
    ``evaluation`` the content of ``evaluation_summary.json``."""
    training = training or {}
    lines = [
        "---",
        "library_name: unixlib",
        "tags: [chest-x-ray, radiology-report-generation, text-to-image, flow-matching]",
        "---",
        "",
        "# UniX (reproduction)",
        "",
        "One Mixture-of-Transformers model that writes a radiology report for a chest X-ray and",
        "generates an X-ray from a report (arXiv 2601.11522), trained with `unixlib`.",
        f"Shape: {config.num_layers} layers, width {config.hidden_size}, report input "
        f"{config.image_size_und} px, generation {config.image_size_gen} px, VAE "
        f"{config.vae_downsample}x down / {config.latent_channels} channels "
        f"(latent scale {config.vae_scale:.6g}, shift {config.vae_shift:.6g}).",
        "",
        "## Training",
        "",
    ]
    given = [k for k in TRAINING_KEYS if training.get(k) not in (None, "")]
    lines += [f"- {k}: {training[k]}" for k in given] or ["- not recorded"]
    lines += [
        "",
        "The default profiles train on SynthCXR, a procedural synthetic data set: such a model",
        "is a test of the pipeline, not a clinical tool. No model here is fit for clinical use.",
        "",
    ]
    if evaluation:
        lines += [*_metrics_section(evaluation), ""]
    lines += [
        "## Use",
        "",
        "```",
        "python -m unixlib describe --model THIS_DIR image.png scan.dcm --out reports.csv",
        'python -m unixlib draw --model THIS_DIR --report "Small left pleural effusion." --out drawn/',
        "```",
        "",
        "In Python: `UniX.from_pretrained(THIS_DIR)`; the tokenizer is `ReportTokenizer.load(THIS_DIR)`;",
        "`vae/` is a diffusers `AutoencoderKL` whose `scaling_factor`/`shift_factor` give the",
        "model's latents: `(z - shift_factor) * scaling_factor`.",
        "",
    ]
    return "\n".join(lines)
