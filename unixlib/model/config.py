"""UniXConfig: every shape and default of the model, plus the size presets.

One flat :class:`transformers.PretrainedConfig` (``model_type = "unix"``) so that a checkpoint
directory carries a plain ``config.json`` and ``UniXConfig.from_pretrained`` works. The presets
are a registry, as DiT's ``DiT_models``::

    cfg = preset("tiny")                      # CPU smoke
    cfg = preset("paper", mot=False)          # official shapes, shared-weight ablation

Numbers of the ``paper`` preset are the official UniX release (``inference/config.json`` of
ZrH42/UniX, see PAPER.md); nothing here is tuned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import PretrainedConfig

# Our byte-level BPE puts its specials at ids 0..4 (unixlib/data/text/tokenizer.py); the paper uses
# the DeepSeek tokenizer of Janus-Pro, which has no pad token (eos doubles as pad).
BPE_SPECIAL_IDS = {"pad": 0, "bos": 1, "eos": 2, "boi": 3, "eoi": 4}
JANUS_SPECIAL_IDS = {"bos": 100000, "eos": 100001, "pad": 100001, "boi": 100003, "eoi": 100580}

# The release's latent-diffusion kl-f16 autoencoder (RGB, 16 channels, 16x down; LDM ddconfig
# ch 128, ch_mult 1,1,2,2,4, 2 res blocks, attention at 16 px) in diffusers terms, i.e.
# vae.ldm_vae_config() of that checkpoint's yaml (tests/test_unix.py checks the equality).
KL_F16_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 16,
    "block_out_channels": [128, 128, 256, 256, 512],
    "layers_per_block": 2,
    "down_block_types": ["DownEncoderBlock2D"] * 4 + ["AttnDownEncoderBlock2D"],
    "up_block_types": ["AttnUpDecoderBlock2D"] + ["UpDecoderBlock2D"] * 4,
    "norm_num_groups": 32,
    "sample_size": 256,
}


# UniXConfig.gen_conditioning: the paper's per-layer attention, or the stacked-VLM ablation.
GEN_CONDITIONINGS = ("attention", "final_states")
# The sampler's settings in UniXConfig (see ``UniXConfig.with_sampler``).
SAMPLER_FIELDS = ("sample_steps", "sample_shift", "cfg_scale", "cfg_interval", "cfg_renorm")
# The paper's sampler (PAPER.md): the small and paper presets use it.
PAPER_SAMPLER: dict[str, Any] = {"sample_steps": 50, "cfg_scale": 2.0}


@dataclass(repr=False)
class UniXConfig(PretrainedConfig):
    """All hyper-parameters of a UniX model (defaults = the ``tiny`` preset).

    Geometry of the two image paths:

    * understanding: ``image_size_und`` px -> SigLIP patches of ``vit_patch_size`` ->
      ``(image_size_und // vit_patch_size) ** 2`` ViT tokens of width ``vit_hidden_size``;
    * generation: ``image_size_gen`` px -> VAE (``vae_downsample`` x down, ``latent_channels``)
      -> patches of ``latent_patch_size`` -> a token grid of side
      ``image_size_gen // (vae_downsample * latent_patch_size)``, at most ``max_latent_size``.
    """

    model_type = "unix"

    # --- language model (each MoT branch) ---
    vocab_size: int = 1024  # the smoke BPE's size; the paper's DeepSeek vocab is 102400
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 4  # == num_heads: the paper uses no grouped-query attention
    intermediate_size: int = 688  # SwiGLU width, ~2.7 x hidden as Janus-Pro (5632 / 2048)
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    qkv_bias: bool = True  # Qwen2-style biases on q/k/v (BAGEL lineage), none on o
    qk_norm: bool = True  # per-head RMSNorm of q and k: stabilises the mixed-modality softmax
    mot: bool = True  # True: separate und/gen weight sets (MoT); False: one shared set
    # How the generation tokens see the report (MoT only). "attention": in every block they
    # attend to the understanding branch's keys/values of the report (UniX's cross-modal
    # self-attention). "final_states": the ablation that stacks a diffusion transformer on a
    # VLM: the report runs through the understanding branch alone, its final states go
    # through a linear projection (``cond_proj``) and the generation branch re-reads them as
    # its own context tokens, so no generation token ever sees an understanding layer.
    gen_conditioning: str = "attention"
    # --- special token ids (sequence plans, decoding) ---
    bos_id: int = BPE_SPECIAL_IDS["bos"]
    eos_id: int = BPE_SPECIAL_IDS["eos"]
    pad_id: int = BPE_SPECIAL_IDS["pad"]
    boi_id: int = BPE_SPECIAL_IDS["boi"]
    eoi_id: int = BPE_SPECIAL_IDS["eoi"]
    # --- understanding: SigLIP vision tower + 2-layer MLP connector ---
    image_size_und: int = 64
    # The paper's 16 px patches in every preset. At 64 px: 4 x 4 = 16 ViT tokens. With 8 px
    # patches (64 tokens) a smoke stage-1 step took 0.52 s instead of 0.34 s on two cores, and
    # the from-scratch tower had not started reading findings after 300 steps (it had with 16).
    vit_patch_size: int = 16
    vit_hidden_size: int = 128
    vit_num_layers: int = 2
    vit_num_heads: int = 2
    vit_intermediate_size: int = 512
    # transformers' SigLIP default is tanh-GELU; Janus-Pro's (timm) SigLIP, and so the
    # release's, uses exact GELU ("gelu"), which the paper preset sets.
    vit_hidden_act: str = "gelu_pytorch_tanh"
    # --- generation: VAE latents as tokens ---
    image_size_gen: int = 64  # training resolution of the generation path (px)
    latent_channels: int = 4
    vae_downsample: int = 8
    # diffusers AutoencoderKL arguments; None = vae.tiny_autoencoder_config(latent_channels,
    # vae_downsample), the gray VAE trained here. Its latent channels / levels must agree.
    vae_config: dict[str, Any] | None = None
    # z_norm = vae_scale * (z - vae_shift). The paper writes 0.238092 * (z + 0.201906), so
    # its shift here is -0.201906 (minus the paper's number). Defaults are identity: a VAE
    # trained in this repository sets them from vae.latent_stats() on its latent cache.
    vae_scale: float = 1.0
    vae_shift: float = 0.0
    latent_patch_size: int = 1  # latent pixels per token side (paper 1)
    max_latent_size: int = 16  # side of the fixed sin-cos position table, in tokens
    # (Training knobs -- loss weights, REPA weight, text dropout, training timestep shift --
    # live in train/config.py's TrainConfig, their one home.)
    # --- REPA (stage 2) ---
    # Take the generation tokens' hidden state after block `repa_depth`, counted from 1
    # (the paper's "eighth layer" = 8). The official code indexes 0-based and so aligns the
    # output of the 9th block; `repa_official_zero_based=True` reproduces that quirk.
    repa_depth: int = 2
    repa_official_zero_based: bool = False
    # The release's other two REPA quirks (model/repa.py), off by default: match the token
    # grids by 1-D interpolation of the flattened sequence (mixes rows) instead of in 2-D,
    # and divide the batch-mean REPA loss by the number of generation images once more.
    repa_official_1d_interp: bool = False
    repa_official_batch_factor: bool = False
    # The release's RadDino input (model/repa.py, RadDinoTarget): bicubic resize to 224 px
    # (per 256 px of image), quantised to uint8 by truncation, then RadDino's own processor;
    # ours resizes straight to the processor's size in float.
    repa_official_preprocess: bool = False
    repa_hidden_size: int = 256  # projector width (paper: = hidden size 2048)
    repa_target_dim: int = 128  # the frozen target encoder's feature width (RadDino: 768)
    # --- sampling (the one home of these settings: saved with every checkpoint, read by
    # every sampler; an evaluation overrides them only on purpose, and says so) ---
    # The paper's are 50 grid points and guidance 2.0 (PAPER.md, "Flow matching and
    # sampling"; the small and paper presets). The tiny preset samples with 25 points (its
    # few hundred training steps gain nothing from more) and guidance 4.0: a tiny model
    # trained for minutes draws the report's findings too faintly at 2.0.
    sample_steps: int = 25  # timesteps in linspace(1, 0, steps): steps - 1 Euler updates
    sample_shift: float = 3.0
    cfg_scale: float = 4.0
    cfg_interval: tuple[float, float] = (0.4, 1.0)  # CFG active for lo < t <= hi
    cfg_renorm: bool = True  # global renorm v <- v * min(1, |v_cond| / |v_cfg|)
    # Token layout of every sequence plan (data/packing.py): "ours", or "official", the
    # layout of the official inference code, which the released weights expect.
    sequence_layout: str = "ours"
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs: Any) -> None:
        """Normalise the container fields (a JSON round trip gives lists), then validate."""
        self.vae_config = dict(self.vae_config) if self.vae_config is not None else None
        self.cfg_interval = (float(self.cfg_interval[0]), float(self.cfg_interval[1]))
        super().__post_init__(**kwargs)
        self.validate_shapes()

    # ------------------------------------------------------------------ derived quantities
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def vit_grid(self) -> int:
        """ViT tokens per side at ``image_size_und``."""
        return self.image_size_und // self.vit_patch_size

    @property
    def latent_downsample(self) -> int:
        """Pixels per latent token side: VAE downsampling x latent patch size."""
        return self.vae_downsample * self.latent_patch_size

    @property
    def latent_token_dim(self) -> int:
        """Width of one patchified latent token, C * p * p."""
        return self.latent_channels * self.latent_patch_size**2

    @property
    def repa_layer_index(self) -> int:
        """0-based index of the block whose output REPA aligns (see ``repa_depth``)."""
        return self.repa_depth if self.repa_official_zero_based else self.repa_depth - 1

    def latent_grid(self, size: int) -> int:
        """Latent tokens per side for a ``size``-px generated image (error if it does not fit)."""
        if size % self.latent_downsample:
            raise ValueError(
                f"image size {size} is not a multiple of {self.latent_downsample} "
                "(vae_downsample * latent_patch_size)"
            )
        grid = size // self.latent_downsample
        if grid > self.max_latent_size:
            raise ValueError(
                f"image size {size} needs a {grid}x{grid} latent grid, larger than "
                f"max_latent_size={self.max_latent_size}"
            )
        return grid

    def sampler(self) -> dict[str, Any]:
        """The sampling settings, ``{field: value}`` for :data:`SAMPLER_FIELDS`."""
        return {k: getattr(self, k) for k in SAMPLER_FIELDS}

    def with_sampler(self, overrides: dict[str, Any]) -> list[str]:
        """Apply sampler ``overrides`` in place (validated); returns ``"field: old -> new"``
        for each one that changes a value, for a caption to say."""
        unknown = sorted(set(overrides) - set(SAMPLER_FIELDS))
        if unknown:
            raise ValueError(f"sampler overrides {unknown}: not one of {list(SAMPLER_FIELDS)}")
        changed = []
        for key, value in overrides.items():
            old = getattr(self, key)
            value = tuple(float(v) for v in value) if key == "cfg_interval" else value
            if value != old:
                changed.append(f"{key}: {old} -> {value}")
            setattr(self, key, value)
        self.validate_shapes()
        return changed

    def special_ids(self) -> dict[str, int]:
        """``{"bos", "eos", "pad", "boi", "eoi"}`` -> id, the form the packing helpers take."""
        return {
            "bos": self.bos_id,
            "eos": self.eos_id,
            "pad": self.pad_id,
            "boi": self.boi_id,
            "eoi": self.eoi_id,
        }

    def vision_config(self) -> dict[str, Any]:
        """Keyword arguments of ``transformers.SiglipVisionConfig`` for the vision tower."""
        return {
            "hidden_size": self.vit_hidden_size,
            "intermediate_size": self.vit_intermediate_size,
            "num_hidden_layers": self.vit_num_layers,
            "num_attention_heads": self.vit_num_heads,
            "image_size": self.image_size_und,
            "patch_size": self.vit_patch_size,
            "num_channels": 3,
            "hidden_act": self.vit_hidden_act,
        }

    def autoencoder_config(self) -> dict[str, Any]:
        """Keyword arguments of ``diffusers.AutoencoderKL`` for the (frozen) VAE."""
        if self.vae_config is not None:
            return dict(self.vae_config)
        from unixlib.model.vae import tiny_autoencoder_config  # lazy: keeps diffusers optional

        return tiny_autoencoder_config(self.latent_channels, self.vae_downsample)

    def validate_shapes(self) -> None:
        """Raise ``ValueError`` naming the field when shapes cannot fit together."""
        problems = []
        if self.hidden_size % self.num_heads:
            problems.append(f"hidden_size {self.hidden_size} % num_heads {self.num_heads} != 0")
        if self.head_dim % 2:
            problems.append(f"head_dim {self.head_dim} must be even for RoPE")
        if self.num_heads % self.num_kv_heads:
            problems.append(f"num_heads {self.num_heads} % num_kv_heads {self.num_kv_heads} != 0")
        if self.image_size_und % self.vit_patch_size:
            problems.append(f"image_size_und {self.image_size_und} % vit_patch_size != 0")
        if self.vae_config is not None:
            levels = len(self.vae_config.get("block_out_channels", ()))
            if 2 ** (levels - 1) != self.vae_downsample:
                problems.append(
                    f"vae_config has {levels} levels (downsampling by "
                    f"2**(levels-1)), not vae_downsample={self.vae_downsample}"
                )
            if self.vae_config.get("latent_channels") != self.latent_channels:
                problems.append(
                    f"vae_config latent_channels {self.vae_config.get('latent_channels')}"
                    f" != latent_channels {self.latent_channels}"
                )
        if not 1 <= self.repa_layer_index + 1 <= self.num_layers:
            problems.append(f"repa_depth {self.repa_depth} outside 1..num_layers={self.num_layers}")
        lo, hi = self.cfg_interval
        if not 0.0 <= lo <= hi <= 1.0:
            problems.append(f"cfg_interval {self.cfg_interval} is not 0 <= lo <= hi <= 1")
        if self.gen_conditioning not in GEN_CONDITIONINGS:
            problems.append(
                f"gen_conditioning {self.gen_conditioning!r} not one of {GEN_CONDITIONINGS}"
            )
        elif self.gen_conditioning == "final_states" and not self.mot:
            problems.append("gen_conditioning 'final_states' needs mot=True (a generation branch)")
        if self.sequence_layout not in ("ours", "official"):
            problems.append(f"sequence_layout {self.sequence_layout!r} is not ours | official")
        if problems:
            raise ValueError("UniXConfig: " + "; ".join(problems))
        self.latent_grid(self.image_size_gen)


PRESETS: dict[str, dict[str, Any]] = {
    # CPU smoke: seconds per step on two cores.
    "tiny": {},
    # One GPU at 256 px: ~0.1B per branch; VAE 8x with 2x2 latent patches -> 16x16 tokens.
    "small": {
        "vocab_size": 4096,
        "hidden_size": 512,
        "num_layers": 8,
        "num_heads": 8,
        "num_kv_heads": 8,
        "intermediate_size": 1376,
        "image_size_und": 256,
        "vit_patch_size": 16,
        "vit_hidden_size": 384,
        "vit_num_layers": 6,
        "vit_num_heads": 6,
        "vit_intermediate_size": 1536,
        "image_size_gen": 256,
        "latent_channels": 4,
        "latent_patch_size": 2,
        "max_latent_size": 32,  # room for 512 px (stage 3)
        "repa_depth": 3,
        "repa_hidden_size": 512,
        "repa_target_dim": 384,
        **PAPER_SAMPLER,
    },
    # The official UniX shapes (Janus-Pro-1B LLM per branch, SigLIP-L/16 at 384, kl-f16).
    "paper": {
        "vocab_size": 102400,
        "hidden_size": 2048,
        "num_layers": 24,
        "num_heads": 16,
        "num_kv_heads": 16,
        "intermediate_size": 5632,
        **{f"{k}_id": v for k, v in JANUS_SPECIAL_IDS.items()},
        "image_size_und": 384,
        "vit_patch_size": 16,
        "vit_hidden_size": 1024,
        "vit_num_layers": 24,
        "vit_num_heads": 16,
        "vit_intermediate_size": 4096,
        "vit_hidden_act": "gelu",
        "image_size_gen": 256,  # stage 2; stage 3 overrides 512
        "latent_channels": 16,
        "vae_downsample": 16,
        "vae_config": KL_F16_VAE_CONFIG,
        "vae_scale": 0.238092,
        "vae_shift": -0.201906,  # paper: 0.238092 * (z + 0.201906)
        "latent_patch_size": 1,
        "max_latent_size": 32,
        "repa_depth": 8,
        "repa_hidden_size": 2048,
        "repa_target_dim": 768,  # RadDino patch features
        **PAPER_SAMPLER,
    },
}


def preset(name: str, **overrides: Any) -> UniXConfig:
    """The named preset (``tiny``, ``small``, ``paper``) with ``overrides`` applied on top."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return UniXConfig(**{**PRESETS[name], **overrides})
