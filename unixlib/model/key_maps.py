"""Foreign checkpoint names -> UniX names (model_contract.md), on plain state dicts.

Each mapper returns ``(ours, skipped, unrecognised)``: tensors under our names, foreign keys
deliberately left out (with the reason), and foreign keys it does not know. No module is
touched here; ``weights.py`` applies the result to a model and reports.

Names were read from deepseek-ai/Janus (``janus/models/modeling_vlm.py``: ``vision_model``,
``aligner``, ``gen_*``, ``language_model`` = ``LlamaForCausalLM``; ``siglip_vit.py``: timm
``VisionTransformer`` with fused ``qkv``; ``projector.py``: ``layers.0``/``layers.2``) and
ZrH42/UniX (``modeling/unix/unix.py``, ``qwen2_navit.py``: ``Qwen2MoTDecoderLayer`` with
``*_moe_gen`` twins; ``inference/pipeline.py``: ``connector.layers.{0,2}`` in the checkpoint).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from torch import Tensor

__all__ = ["Mapped", "janus_to_unix", "timm_siglip_to_hf", "unix_release_to_unix"]

Mapped = tuple[dict[str, Tensor], dict[str, str], list[str]]  # (ours, skipped, unrecognised)


def _remap(state: dict[str, Tensor], rule: Callable[[str, Tensor], object]) -> Mapped:
    """Apply ``rule(key, value)`` -> {our: tensor} | skip-reason str | None (unrecognised)."""
    ours: dict[str, Tensor] = {}
    skipped: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in state.items():
        out = rule(key, value)
        if isinstance(out, dict):
            ours.update(out)
        elif isinstance(out, str):
            skipped[key] = out
        else:
            unknown.append(key)
    return ours, skipped, unknown


_TIMM_BLOCK = re.compile(r"blocks\.(\d+)\.(norm1|norm2|attn\.proj|mlp\.fc1|mlp\.fc2)\.(\w+)$")
_TIMM_NAMES = {
    "norm1": "layer_norm1",
    "norm2": "layer_norm2",
    "attn.proj": "self_attn.out_proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}


def timm_siglip_to_hf(state: dict[str, Tensor], prefix: str = "") -> Mapped:
    """Janus' timm ``VisionTransformer`` keys -> transformers ``SiglipVisionModel`` keys.

    ``blocks.N.attn.qkv`` (3D, D) is split into q/k/v in that order (timm reshapes its output
    to (B, N, 3, heads, head_dim)); ``pos_embed`` (1, N, D) becomes (N, D); the final ``norm``
    is ``post_layernorm``. The MAP pooling head (``attn_pool``) is skipped. ``prefix`` is
    prepended to every output name (e.g. ``"vision_tower."``).
    """

    def rule(key: str, value: Tensor) -> object:
        if key.startswith("attn_pool."):
            return "timm SigLIP attention-pooling head: UniX uses the patch tokens"
        if key.startswith("patch_embed.proj."):
            return {f"{prefix}embeddings.patch_embedding.{key.rsplit('.', 1)[1]}": value}
        if key == "pos_embed":
            return {
                f"{prefix}embeddings.position_embedding.weight": value.reshape(-1, value.shape[-1])
            }
        if key.startswith("norm."):
            return {f"{prefix}post_layernorm.{key.rsplit('.', 1)[1]}": value}
        if m := re.match(r"blocks\.(\d+)\.attn\.qkv\.(\w+)$", key):
            q, k, v = value.chunk(3, dim=0)
            base = f"{prefix}encoder.layers.{m[1]}.self_attn"
            return {f"{base}.{n}_proj.{m[2]}": t for n, t in zip("qkv", (q, k, v), strict=True)}
        if m := _TIMM_BLOCK.match(key):
            return {f"{prefix}encoder.layers.{m[1]}.{_TIMM_NAMES[m[2]]}.{m[3]}": value}
        return None

    return _remap(state, rule)


# Per-layer modules; the release's generation twin carries "_moe_gen" on the module itself:
# self_attn.q_proj_moe_gen, self_attn.q_norm_moe_gen, input_layernorm_moe_gen, but
# mlp_moe_gen.gate_proj (the whole MLP is duplicated).
_LLM_LAYER = re.compile(
    r"language_model\.model\.layers\.(\d+)\.(input_layernorm|post_attention_layernorm"
    r"|self_attn\.[qkvo]_proj|self_attn\.[qk]_norm)(_moe_gen)?\.(\w+)$"
)
_LLM_MLP = re.compile(
    r"language_model\.model\.layers\.(\d+)\.mlp(_moe_gen)?\.((?:gate|up|down)_proj)\.(\w+)$"
)
_LLM_NAMES = {"input_layernorm": "input_norm", "post_attention_layernorm": "post_norm"}


def _llm_rule(key: str, value: Tensor) -> object:
    """Shared LLM naming of Janus (Llama) and the release (Qwen2-MoT): -> ours, or None."""
    if key.endswith("rotary_emb.inv_freq"):
        return "RoPE frequencies are recomputed from rope_theta"
    if key == "language_model.model.embed_tokens.weight":
        return {"language_model.embed_tokens.weight": value}
    if key == "language_model.lm_head.weight":
        return {"lm_head.weight": value}
    if key in ("language_model.model.norm.weight", "language_model.model.norm_moe_gen.weight"):
        return {f"language_model.norm_{'gen' if 'moe_gen' in key else 'und'}.weight": value}
    if m := _LLM_LAYER.match(key):
        layer, module, gen, param = m.groups()
        name = _LLM_NAMES.get(module, module.removeprefix("self_attn."))
        return {f"language_model.layers.{layer}.{'gen' if gen else 'und'}.{name}.{param}": value}
    if m := _LLM_MLP.match(key):
        layer, gen, proj, param = m.groups()
        return {
            f"language_model.layers.{layer}.{'gen' if gen else 'und'}.mlp.{proj}.{param}": value
        }
    return None


def janus_to_unix(state: dict[str, Tensor]) -> Mapped:
    """Janus-Pro ``MultiModalityCausalLM`` keys -> ours (und branch, vision, connector)."""
    vision = {
        k.removeprefix("vision_model.vision_tower."): v
        for k, v in state.items()
        if k.startswith("vision_model.vision_tower.")
    }
    ours, skipped, unknown = timm_siglip_to_hf(vision, prefix="vision_tower.")
    skipped = {f"vision_model.vision_tower.{k}": r for k, r in skipped.items()}
    unknown = [f"vision_model.vision_tower.{k}" for k in unknown]

    def rule(key: str, value: Tensor) -> object:
        if key.startswith(("gen_vision_model.", "gen_aligner.", "gen_head.", "gen_embed.")):
            return "Janus-Pro's VQ image-generation path: UniX generates with a VAE + flow"
        if m := re.match(r"aligner\.layers\.([02])\.(weight|bias)$", key):
            return {f"connector.{m[1]}.{m[2]}": value}
        return _llm_rule(key, value)

    rest = {k: v for k, v in state.items() if not k.startswith("vision_model.vision_tower.")}
    more, more_skipped, more_unknown = _remap(rest, rule)
    return {**ours, **more}, {**skipped, **more_skipped}, unknown + more_unknown


def unix_release_to_unix(state: dict[str, Tensor]) -> Mapped:
    """Official UniX ``model.safetensors`` keys -> ours (LLM both branches, ViT, heads)."""
    vit_prefix = next(
        (
            p
            for p in ("vit_model.vision_tower.", "vision_model.vision_tower.")
            if any(k.startswith(p) for k in state)
        ),
        None,
    )
    ours: dict[str, Tensor] = {}
    skipped: dict[str, str] = {}
    unknown: list[str] = []
    if vit_prefix is not None:
        vision = {
            k.removeprefix(vit_prefix): v for k, v in state.items() if k.startswith(vit_prefix)
        }
        ours, vskip, vunk = timm_siglip_to_hf(vision, prefix="vision_tower.")
        skipped = {vit_prefix + k: r for k, r in vskip.items()}
        unknown = [vit_prefix + k for k in vunk]

    def rule(key: str, value: Tensor) -> object:
        if key.startswith(("vit_model.vision_tower.", "vision_model.vision_tower.")):
            return f"second copy of the vision tower (loaded from {vit_prefix}*)"
        if key.startswith(("vae2llm.", "llm2vae.", "time_embedder.mlp.")):
            return {key: value}
        if m := re.match(r"connector\.(?:layers\.([02])|fc([12]))\.(weight|bias)$", key):
            return {f"connector.{m[1] or int(m[2]) * 2 - 2}.{m[3]}": value}
        if m := re.match(
            r"language_model\.model\.repa_loss_fn\.projectors\.0\.mlp\.(\d)\.(\w+)$", key
        ):
            return {f"repa_projector.{m[1]}.{m[2]}": value}
        if key == "vit_pos_embed.pos_embed":
            return "unused by the release: its SigLIP adds its own position embedding"
        if key == "latent_pos_embed.pos_embed":
            return "fixed 2-D sin-cos table, recomputed (checked against ours)"
        return _llm_rule(key, value)

    rest = {k: v for k, v in state.items() if vit_prefix is None or not k.startswith(vit_prefix)}
    more, more_skipped, more_unknown = _remap(rest, rule)
    return {**ours, **more}, {**skipped, **more_skipped}, unknown + more_unknown
