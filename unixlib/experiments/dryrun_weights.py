"""The dry run's checks of weights and tokenizer (:mod:`.dryrun`), on the meta device.

Janus-Pro-1B into the stage-1 model, the official UniX release (with its VAE) into the paper
model, an LDM kl-f16 VAE into our autoencoder: shapes only, no tensor data read; the tokenizer's
special ids and size against every embedding it will index.
"""

from __future__ import annotations

from typing import Any

from unixlib import config
from unixlib.experiments.dryrun_paths import Check, path_exists


def _meta_import(label: str, build: Any, importer: Any, path: str, fix: str) -> Check:
    """Build a model on the meta device and run a strict importer on it (no data read)."""
    import torch

    from unixlib.model.weights import WeightImportError

    try:
        with torch.device("meta"):
            model = build()
        report = importer(model, config.project_path(path))
    except (WeightImportError, FileNotFoundError, ValueError, KeyError, RuntimeError) as err:
        first = str(err).splitlines()
        detail = "; ".join(line.strip() for line in first[:8]) + (" ..." if len(first) > 8 else "")
        return Check(label, False, detail, fix)
    n = len(model.state_dict())
    return Check(
        label,
        True,
        f"{len(report.loaded)} loaded + {len(report.initialised)} "
        f"initialised by rule of {n} model keys; shapes match (meta device)",
    )


def check_weights(profile: config.Profile) -> list[Check]:
    """Janus-Pro, the release and the VAE load on the meta device; tokenizer fits them."""
    from unixlib.model.config import preset

    out = []
    nb2 = profile.params["02_train_ar"]
    rows: dict[str, int] = {}
    janus, release = nb2.get("janus_dir", ""), nb2.get("release_dir", "")
    if janus and path_exists(janus):
        from unixlib.model.weights import embedding_rows, import_janus_pro

        try:
            rows["Janus-Pro"] = embedding_rows(config.project_path(janus))
        except (ValueError, FileNotFoundError, RuntimeError) as err:
            out.append(Check("Janus-Pro embedding", False, str(err), "a complete Janus-Pro-1B"))
        else:
            size = {"image_size_und": nb2["image_size"], "vocab_size": rows["Janus-Pro"]}
            out.append(
                _meta_import(
                    "Janus-Pro -> stage-1 model",
                    lambda: _model(preset(nb2["preset"], **size)),
                    import_janus_pro,
                    janus,
                    "re-download Janus-Pro-1B (a key is missing or misshaped)",
                )
            )
    if release and path_exists(release):
        from unixlib.model.weights import load_foreign_state_dict
        from unixlib.model.weights_release import import_unix_release

        try:
            state = load_foreign_state_dict(config.project_path(release), meta=True)
            rows["UniX release"] = int(state["language_model.model.embed_tokens.weight"].shape[0])
        except (KeyError, FileNotFoundError, ValueError, RuntimeError) as err:
            out.append(Check("UniX release embedding", False, str(err), "a complete release"))
        size = {
            "vocab_size": rows.get("UniX release", 102400),
            "image_size_gen": 512,
            "sequence_layout": "official",
        }
        out.append(
            _meta_import(
                "UniX release -> paper model (+ VAE)",
                lambda: _model(preset("paper", **size)),
                import_unix_release,
                release,
                "re-download the release; vae/ needs kl-f16d16.ckpt and its yaml",
            )
        )
    vae = profile.params["03_train_diffusion"].get("vae_dir", "")
    if vae and path_exists(vae) and not release:
        out.append(check_ldm_vae(vae))
    out += check_tokenizer(profile, rows)
    return out


def _model(cfg: Any) -> Any:
    from unixlib.model.unix import UniX

    return UniX(cfg)


def check_ldm_vae(path: str) -> Check:
    """An LDM kl-f16 checkpoint (+ yaml) against the paper's autoencoder, on the meta device."""
    import torch

    from unixlib.model.config import KL_F16_VAE_CONFIG
    from unixlib.model.vae import build_autoencoder, convert_ldm_vae_state_dict
    from unixlib.model.weights import load_foreign_state_dict

    p = config.project_path(path)
    ckpt = p if p.is_file() else next(iter(sorted(p.glob("*.ckpt"))), p)
    yaml_file = ckpt.with_suffix(".yaml")
    if not yaml_file.is_file():
        return Check(
            "VAE",
            False,
            f"no {yaml_file.name} beside {ckpt}",
            "save latent-diffusion's models/first_stage_models/kl-f16/config.yaml there",
        )
    try:
        ours, _, unknown = convert_ldm_vae_state_dict(load_foreign_state_dict(ckpt, meta=True), 5)
    except (ValueError, RuntimeError) as err:
        return Check("VAE", False, str(err), "a kl-f16 LDM checkpoint")
    with torch.device("meta"):
        target = build_autoencoder(KL_F16_VAE_CONFIG).state_dict()
    missing = sorted(set(target) - set(ours))
    bad = [k for k in set(target) & set(ours) if tuple(target[k].shape) != tuple(ours[k].shape)]
    ok = not (missing or bad or unknown)
    detail = f"{len(ours)} keys; missing {missing[:3]}, misshaped {bad[:3]}, unknown {unknown[:3]}"
    return Check("VAE kl-f16 (meta device)", ok, detail, "the release's kl-f16d16.ckpt")


def check_tokenizer(profile: config.Profile, rows: dict[str, int]) -> list[Check]:
    """The tokenizer's special ids and size against every embedding it will index."""
    tok_dir = profile.params["01_clean_data"].get("tokenizer_dir", "")
    if not tok_dir or not path_exists(tok_dir):
        return []
    from unixlib.data.text.tokenizer import JANUS_SPECIAL_IDS, ReportTokenizer

    try:
        tok = ReportTokenizer.load(config.project_path(tok_dir))
    except (FileNotFoundError, ValueError) as err:
        return [Check("tokenizer", False, str(err), "a directory with Janus-Pro's tokenizer.json")]
    out = [
        Check(
            "tokenizer special ids",
            tok.special_ids == JANUS_SPECIAL_IDS,
            f"{tok.special_ids}",
            "the paper profiles need Janus-Pro's (DeepSeek) tokenizer",
        )
    ]
    for name, n in rows.items():
        top = max(tok.special_ids.values())
        ok = tok.vocab_size <= n and top < n
        out.append(
            Check(
                f"tokenizer vs {name} embedding",
                ok,
                f"tokenizer needs {tok.vocab_size} rows (ids up to {top}); {n} rows",
                "use the tokenizer that belongs to these weights",
            )
        )
    return out
