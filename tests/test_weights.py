"""Janus-Pro and official-UniX importers on tiny checkpoints written with the official names.

The fake checkpoints use the key names and shape rules of deepseek-ai/Janus and ZrH42/UniX
(scaled down: 2 layers, width 64); the latent-diffusion VAE keys are enumerated from LDM's
Encoder/Decoder construction rules. The model is a stand-in assembled from the real parts
with the contract's attribute names (unix.py may not exist yet).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import save_file
from torch import Tensor, nn

from unixlib.model.config import UniXConfig
from unixlib.model.flow import TimestepEmbedder, sincos_2d_table
from unixlib.model.mot import MoTLanguageModel
from unixlib.model.repa import REPAProjector
from unixlib.model.vae import VAEWrapper, build_autoencoder, ldm_vae_config
from unixlib.model.vision import Connector, build_vision_tower
from unixlib.model.weights import (
    WeightImportError,
    import_janus_pro,
    load_foreign_state_dict,
)
from unixlib.model.weights_release import import_unix_release

D, V, INTER, LAYERS = 64, 50, 96, 2  # LLM width, vocab, SwiGLU width, blocks
DV, IV, P, IMG = 32, 64, 8, 16  # ViT width, MLP width, patch, image size (2x2 patches)
DDCONFIG = {
    "double_z": True,
    "z_channels": 4,
    "resolution": 32,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [16],
    "dropout": 0.0,
}


def _cfg() -> UniXConfig:
    return UniXConfig(
        vocab_size=V,
        hidden_size=D,
        num_layers=LAYERS,
        num_heads=2,
        num_kv_heads=2,
        intermediate_size=INTER,
        image_size_und=IMG,
        vit_patch_size=P,
        vit_hidden_size=DV,
        vit_num_layers=2,
        vit_num_heads=2,
        vit_intermediate_size=IV,
        latent_channels=4,
    )


class StandIn(nn.Module):
    """The contract's top-level names: language_model, lm_head, vision_tower, connector, ..."""

    def __init__(self) -> None:
        super().__init__()
        cfg = _cfg()
        torch.manual_seed(0)
        self.language_model = MoTLanguageModel(cfg)
        self.lm_head = nn.Linear(D, V, bias=False)
        self.vision_tower = build_vision_tower({**cfg.vision_config(), "hidden_act": "gelu"})
        self.connector = Connector(DV, D)
        self.vae2llm, self.llm2vae = nn.Linear(4, D), nn.Linear(D, 4)
        self.time_embedder = TimestepEmbedder(D)
        self.repa_projector = REPAProjector(D, D, 16)
        self.vae = VAEWrapper(build_autoencoder(ldm_vae_config({"ddconfig": DDCONFIG})), 1.0, 0.0)


class Rand:
    """Distinct seeded random tensors, so a value in the wrong slot is caught."""

    def __init__(self) -> None:
        self.g = torch.Generator().manual_seed(123)

    def __call__(self, *shape: int) -> Tensor:
        return torch.randn(*shape, generator=self.g)


def _timm_vit(r: Rand, prefix: str) -> dict[str, Tensor]:
    sd = {
        f"{prefix}patch_embed.proj.weight": r(DV, 3, P, P),
        f"{prefix}patch_embed.proj.bias": r(DV),
        f"{prefix}pos_embed": r(1, (IMG // P) ** 2, DV),
        f"{prefix}norm.weight": r(DV),
        f"{prefix}norm.bias": r(DV),
        f"{prefix}attn_pool.latent": r(1, 1, DV),
        f"{prefix}attn_pool.kv.weight": r(2 * DV, DV),
    }
    for i in range(2):
        b = f"{prefix}blocks.{i}."
        for name, shape in (
            ("norm1", (DV,)),
            ("norm2", (DV,)),
            ("attn.qkv", (3 * DV, DV)),
            ("attn.proj", (DV, DV)),
            ("mlp.fc1", (IV, DV)),
            ("mlp.fc2", (DV, IV)),
        ):
            sd[f"{b}{name}.weight"] = r(*shape)
            sd[f"{b}{name}.bias"] = r(shape[0])
    return sd


def _llm(r: Rand, release: bool) -> dict[str, Tensor]:
    sd = {
        "language_model.model.embed_tokens.weight": r(V, D),
        "language_model.model.norm.weight": r(D),
        "language_model.lm_head.weight": r(V, D),
    }
    suffixes = ("", "_moe_gen") if release else ("",)
    if release:
        sd["language_model.model.norm_moe_gen.weight"] = r(D)
    for i in range(LAYERS):
        b = f"language_model.model.layers.{i}."
        sd[f"{b}self_attn.rotary_emb.inv_freq"] = r(16)
        for s in suffixes:
            for proj in "qkvo":
                sd[f"{b}self_attn.{proj}_proj{s}.weight"] = r(D, D)
                if release and proj != "o":
                    sd[f"{b}self_attn.{proj}_proj{s}.bias"] = r(D)
            if release:
                sd[f"{b}self_attn.q_norm{s}.weight"] = r(D // 2)
                sd[f"{b}self_attn.k_norm{s}.weight"] = r(D // 2)
            sd[f"{b}mlp{s}.gate_proj.weight"] = r(INTER, D)
            sd[f"{b}mlp{s}.up_proj.weight"] = r(INTER, D)
            sd[f"{b}mlp{s}.down_proj.weight"] = r(D, INTER)
            sd[f"{b}input_layernorm{s}.weight"] = r(D)
            sd[f"{b}post_attention_layernorm{s}.weight"] = r(D)
    return sd


def _janus_dir(tmp_path: Path, extra: dict[str, Tensor] | None = None, drop: str = "") -> Path:
    r = Rand()
    sd = {**_llm(r, release=False), **_timm_vit(r, "vision_model.vision_tower.")}
    sd |= {
        "aligner.layers.0.weight": r(D, DV),
        "aligner.layers.0.bias": r(D),
        "aligner.layers.2.weight": r(D, D),
        "aligner.layers.2.bias": r(D),
        "gen_vision_model.encoder.conv_in.weight": r(4, 3, 3, 3),
        "gen_embed.weight": r(8, 4),
        "gen_aligner.layers.0.weight": r(D, 4),
        "gen_head.vision_head.weight": r(8, D),
    }
    sd.update(extra or {})
    sd.pop(drop, None)
    out = tmp_path / "janus"
    out.mkdir()
    torch.save(sd, out / "pytorch_model.bin")
    return out


def _timm_attention(
    x: Tensor, qkv_w: Tensor, qkv_b: Tensor, proj_w: Tensor, proj_b: Tensor
) -> Tensor:
    """timm's Attention.forward (Janus siglip_vit.py), written out for 2 heads."""
    b, n, c = x.shape
    qkv = F.linear(x, qkv_w, qkv_b).reshape(b, n, 3, 2, c // 2).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
    return F.linear(out.transpose(1, 2).reshape(b, n, c), proj_w, proj_b)


def test_janus_import_places_every_weight(tmp_path: Path) -> None:
    src = load_foreign_state_dict(_janus_dir(tmp_path))
    model = StandIn()
    vae2llm_before = model.vae2llm.weight.clone()
    report = import_janus_pro(model, tmp_path / "janus", strict=True)
    sd = model.state_dict()
    j, o = "language_model.model.layers.1.", "language_model.layers.1."
    assert torch.equal(sd[o + "und.q_proj.weight"], src[j + "self_attn.q_proj.weight"])
    assert torch.equal(sd[o + "und.mlp.down_proj.weight"], src[j + "mlp.down_proj.weight"])
    assert torch.equal(sd[o + "und.post_norm.weight"], src[j + "post_attention_layernorm.weight"])
    assert torch.equal(sd["lm_head.weight"], src["language_model.lm_head.weight"])
    assert torch.equal(sd["connector.2.weight"], src["aligner.layers.2.weight"])
    # Llama has no q/k/v bias and no q/k norm: zeros / ones, and the gen branch is a copy
    assert torch.equal(sd[o + "und.v_proj.bias"], torch.zeros(D))
    assert torch.equal(sd[o + "und.k_norm.weight"], torch.ones(D // 2))
    assert torch.equal(sd[o + "gen.q_proj.weight"], sd[o + "und.q_proj.weight"])
    assert torch.equal(
        sd["language_model.norm_gen.weight"], src["language_model.model.norm.weight"]
    )
    assert report.initialised[o + "gen.v_proj.bias"] == f"copied from {o}und.v_proj.bias"
    # the fused timm qkv is split q, k, v
    qkv = src["vision_model.vision_tower.blocks.0.attn.qkv.weight"]
    assert torch.equal(
        sd["vision_tower.encoder.layers.0.self_attn.k_proj.weight"], qkv[DV : 2 * DV]
    )
    assert sd["vision_tower.embeddings.position_embedding.weight"].shape == (4, DV)
    # outside the Janus scope: untouched and not reported missing
    assert torch.equal(model.vae2llm.weight, vae2llm_before)
    assert report.ok and not any(k.startswith(("vae", "time_")) for k in report.missing)
    reasons = set(report.skipped.values())
    assert any("VQ image-generation" in r for r in reasons)
    assert any("attention-pooling" in r for r in reasons)
    assert any("RoPE" in r for r in reasons)
    assert "MISSING" not in str(report)


def test_janus_vision_attention_matches_timm_computation(tmp_path: Path) -> None:
    src = load_foreign_state_dict(_janus_dir(tmp_path))
    model = StandIn()
    import_janus_pro(model, tmp_path / "janus")
    x = torch.randn(2, 4, DV)
    t = "vision_model.vision_tower.blocks.0.attn."
    want = _timm_attention(
        x, src[t + "qkv.weight"], src[t + "qkv.bias"], src[t + "proj.weight"], src[t + "proj.bias"]
    )
    got = model.vision_tower.encoder.layers[0].self_attn(x)[0]
    assert torch.allclose(got, want, atol=1e-5)


def test_janus_report_lists_missing_unexpected_mismatched(tmp_path: Path) -> None:
    janus = _janus_dir(
        tmp_path,
        extra={
            "language_model.model.extra.weight": torch.zeros(3),
            "aligner.layers.0.bias": torch.zeros(D + 1),
        },
        drop="language_model.model.layers.0.mlp.up_proj.weight",
    )
    model = StandIn()
    report = import_janus_pro(model, janus, strict=False)
    assert report.missing == [
        "language_model.layers.0.und.mlp.up_proj.weight",
        "language_model.layers.0.gen.mlp.up_proj.weight",  # nothing to copy from
    ]
    assert report.unexpected == ["language_model.model.extra.weight"]
    assert report.mismatched == [("connector.0.bias", (D + 1,), (D,))]
    text = str(report)
    assert "MISSING (2)" in text and "UNEXPECTED (1)" in text and "SHAPE MISMATCH (1)" in text
    with pytest.raises(WeightImportError, match=r"language_model\.model\.extra\.weight"):
        import_janus_pro(StandIn(), janus, strict=True)


# ------------------------------------------------------------------------------- official UniX


def _ldm_resnet(r: Rand, name: str, cin: int, cout: int) -> dict[str, Tensor]:
    sd = {
        f"{name}.norm1.weight": r(cin),
        f"{name}.norm1.bias": r(cin),
        f"{name}.conv1.weight": r(cout, cin, 3, 3),
        f"{name}.conv1.bias": r(cout),
        f"{name}.norm2.weight": r(cout),
        f"{name}.norm2.bias": r(cout),
        f"{name}.conv2.weight": r(cout, cout, 3, 3),
        f"{name}.conv2.bias": r(cout),
    }
    if cin != cout:
        sd |= {
            f"{name}.nin_shortcut.weight": r(cout, cin, 1, 1),
            f"{name}.nin_shortcut.bias": r(cout),
        }
    return sd


def _ldm_attn(r: Rand, name: str, c: int) -> dict[str, Tensor]:
    sd = {f"{name}.norm.weight": r(c), f"{name}.norm.bias": r(c)}
    for conv in ("q", "k", "v", "proj_out"):
        sd |= {f"{name}.{conv}.weight": r(c, c, 1, 1), f"{name}.{conv}.bias": r(c)}
    return sd


def _ldm_vae(r: Rand) -> dict[str, Tensor]:
    """Keys and shapes as LDM's Encoder/Decoder (diffusionmodules/model.py) build them."""
    dd, ch, mult, z = DDCONFIG, DDCONFIG["ch"], DDCONFIG["ch_mult"], DDCONFIG["z_channels"]
    sd = {"encoder.conv_in.weight": r(ch, 3, 3, 3), "encoder.conv_in.bias": r(ch)}
    res, cin = dd["resolution"], ch
    for i, m in enumerate(mult):
        for j in range(dd["num_res_blocks"]):
            sd |= _ldm_resnet(r, f"encoder.down.{i}.block.{j}", cin, ch * m)
            cin = ch * m
            if res in dd["attn_resolutions"]:
                sd |= _ldm_attn(r, f"encoder.down.{i}.attn.{j}", cin)
        if i != len(mult) - 1:
            sd |= {
                f"encoder.down.{i}.downsample.conv.weight": r(cin, cin, 3, 3),
                f"encoder.down.{i}.downsample.conv.bias": r(cin),
            }
            res //= 2
    for part, cout in (("encoder", 2 * z), ("decoder", None)):
        c = ch * mult[-1]
        sd |= _ldm_resnet(r, f"{part}.mid.block_1", c, c) | _ldm_attn(r, f"{part}.mid.attn_1", c)
        sd |= _ldm_resnet(r, f"{part}.mid.block_2", c, c)
        if cout:
            sd |= {
                f"{part}.norm_out.weight": r(c),
                f"{part}.norm_out.bias": r(c),
                f"{part}.conv_out.weight": r(cout, c, 3, 3),
                f"{part}.conv_out.bias": r(cout),
            }
    cin = ch * mult[-1]
    sd |= {"decoder.conv_in.weight": r(cin, z, 3, 3), "decoder.conv_in.bias": r(cin)}
    for i in reversed(range(len(mult))):
        for j in range(dd["num_res_blocks"] + 1):
            sd |= _ldm_resnet(r, f"decoder.up.{i}.block.{j}", cin, ch * mult[i])
            cin = ch * mult[i]
            if res in dd["attn_resolutions"]:
                sd |= _ldm_attn(r, f"decoder.up.{i}.attn.{j}", cin)
        if i != 0:
            sd |= {
                f"decoder.up.{i}.upsample.conv.weight": r(cin, cin, 3, 3),
                f"decoder.up.{i}.upsample.conv.bias": r(cin),
            }
            res *= 2
    sd |= {
        "decoder.norm_out.weight": r(cin),
        "decoder.norm_out.bias": r(cin),
        "decoder.conv_out.weight": r(3, cin, 3, 3),
        "decoder.conv_out.bias": r(3),
        "quant_conv.weight": r(2 * z, 2 * z, 1, 1),
        "quant_conv.bias": r(2 * z),
        "post_quant_conv.weight": r(z, z, 1, 1),
        "post_quant_conv.bias": r(z),
        "loss.logvar": r(1),
        "loss.discriminator.main.0.weight": r(8, 3, 4, 4),
    }
    return sd


def _unix_dir(
    tmp_path: Path, with_vae: bool = True, extra: dict[str, Tensor] | None = None
) -> Path:
    r = Rand()
    sd = {**_llm(r, release=True), **_timm_vit(r, "vit_model.vision_tower.")}
    sd |= {
        "connector.layers.0.weight": r(D, DV),
        "connector.layers.0.bias": r(D),
        "connector.layers.2.weight": r(D, D),
        "connector.layers.2.bias": r(D),
        "vae2llm.weight": r(D, 4),
        "vae2llm.bias": r(D),
        "llm2vae.weight": r(4, D),
        "llm2vae.bias": r(4),
        "time_embedder.mlp.0.weight": r(D, 256),
        "time_embedder.mlp.0.bias": r(D),
        "time_embedder.mlp.2.weight": r(D, D),
        "time_embedder.mlp.2.bias": r(D),
        "vit_pos_embed.pos_embed": r(4, D),
        "latent_pos_embed.pos_embed": sincos_2d_table(D, 4).to(torch.bfloat16),
    }
    sd.update(extra or {})
    out = tmp_path / "unix"
    out.mkdir()
    save_file({k: v.contiguous() for k, v in sd.items()}, out / "model.safetensors")
    if with_vae:
        (out / "vae").mkdir()
        torch.save({"state_dict": _ldm_vae(Rand())}, out / "vae" / "kl-f16d16.ckpt")
        cfg = {"model": {"params": {"embed_dim": 4, "ddconfig": DDCONFIG}}}
        (out / "vae" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return out


def test_unix_release_import_is_complete_and_routes_moe_gen(tmp_path: Path) -> None:
    src = load_foreign_state_dict(_unix_dir(tmp_path))
    vae_src = _ldm_vae(Rand())
    model = StandIn()
    report = import_unix_release(model, tmp_path / "unix", strict=True)
    sd = model.state_dict()
    u, o = "language_model.model.layers.0.", "language_model.layers.0."
    assert torch.equal(sd[o + "gen.q_proj.bias"], src[u + "self_attn.q_proj_moe_gen.bias"])
    assert torch.equal(sd[o + "und.q_proj.bias"], src[u + "self_attn.q_proj.bias"])
    assert torch.equal(sd[o + "gen.k_norm.weight"], src[u + "self_attn.k_norm_moe_gen.weight"])
    assert torch.equal(sd[o + "gen.mlp.up_proj.weight"], src[u + "mlp_moe_gen.up_proj.weight"])
    assert torch.equal(sd[o + "gen.input_norm.weight"], src[u + "input_layernorm_moe_gen.weight"])
    assert torch.equal(
        sd["language_model.norm_gen.weight"], src["language_model.model.norm_moe_gen.weight"]
    )
    assert torch.equal(sd["connector.0.weight"], src["connector.layers.0.weight"])
    assert torch.equal(sd["time_embedder.mlp.2.weight"], src["time_embedder.mlp.2.weight"])
    # VAE: attention 1x1 convs squeezed; decoder levels reversed (LDM up.0 = diffusers last)
    a = "vae.autoencoder."
    assert torch.equal(
        sd[a + "encoder.down_blocks.1.attentions.0.to_q.weight"],
        vae_src["encoder.down.1.attn.0.q.weight"][:, :, 0, 0],
    )
    assert torch.equal(
        sd[a + "decoder.up_blocks.1.resnets.0.conv1.weight"],
        vae_src["decoder.up.0.block.0.conv1.weight"],
    )
    assert torch.equal(
        sd[a + "decoder.up_blocks.0.attentions.1.to_out.0.bias"],
        vae_src["decoder.up.1.attn.1.proj_out.bias"],
    )
    assert torch.equal(sd[a + "encoder.conv_norm_out.weight"], vae_src["encoder.norm_out.weight"])
    assert report.ok and not report.notes  # the sin-cos table check passed too
    assert "repa_projector.0.weight" not in report.missing  # the release has no REPA head
    assert report.skipped["loss.logvar"].startswith("LDM training loss")
    assert "latent_pos_embed.pos_embed" in report.skipped


def test_unix_release_without_vae_and_with_foreign_keys(tmp_path: Path) -> None:
    wrong_table = torch.zeros(16, D)
    unix = _unix_dir(
        tmp_path,
        with_vae=False,
        extra={
            "language_model.model.mystery.weight": torch.zeros(2),
            "latent_pos_embed.pos_embed": wrong_table,
        },
    )
    report = import_unix_release(StandIn(), unix, strict=False)
    assert report.unexpected == ["language_model.model.mystery.weight"]
    assert not any(k.startswith("vae.") for k in report.missing)
    assert any("no VAE checkpoint" in n for n in report.notes)
    assert any("latent_pos_embed differs" in n for n in report.notes)
    with pytest.raises(WeightImportError, match="mystery"):
        import_unix_release(StandIn(), unix, strict=True)


def test_ldm_config_translation_has_attention_where_ldm_does() -> None:
    cfg = ldm_vae_config(
        {
            "model": {
                "params": {
                    "embed_dim": 16,
                    "ddconfig": {
                        **DDCONFIG,
                        "resolution": 256,
                        "ch_mult": [1, 1, 2, 2, 4],
                        "z_channels": 16,
                    },
                }
            }
        }
    )
    assert cfg["block_out_channels"] == [32, 32, 64, 64, 128]
    assert cfg["down_block_types"][-1] == "AttnDownEncoderBlock2D"
    assert cfg["down_block_types"][:4] == ["DownEncoderBlock2D"] * 4
    assert cfg["up_block_types"][0] == "AttnUpDecoderBlock2D"
    with pytest.raises(ValueError, match="embed_dim"):
        ldm_vae_config({"embed_dim": 8, "ddconfig": DDCONFIG})


def test_load_foreign_state_dict_formats_and_refusals(tmp_path: Path) -> None:
    a, b = torch.ones(2), torch.zeros(3)
    shard_dir = tmp_path / "sharded"
    shard_dir.mkdir()
    save_file({"a": a}, shard_dir / "s1.safetensors")
    save_file({"b": b}, shard_dir / "s2.safetensors")
    index = {"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}
    (shard_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    merged = load_foreign_state_dict(shard_dir)
    assert set(merged) == {"a", "b"} and torch.equal(merged["b"], b)
    torch.save({"state_dict": {"w": a}, "epoch": 3}, tmp_path / "lightning.ckpt")
    assert set(load_foreign_state_dict(tmp_path / "lightning.ckpt")) == {"w"}
    torch.save({"w": a, "args": argparse.Namespace(lr=1)}, tmp_path / "pickled.ckpt")
    with pytest.raises(ValueError, match="weights_only=True"):
        load_foreign_state_dict(tmp_path / "pickled.ckpt")
    with pytest.raises(FileNotFoundError, match=r"no model\.safetensors"):
        load_foreign_state_dict(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_foreign_state_dict(tmp_path / "absent.ckpt")


def test_imports_wire_into_the_real_unix_model(tmp_path: Path) -> None:
    from unixlib.model.unix import UniX

    janus_report = import_janus_pro(UniX(_cfg()), _janus_dir(tmp_path), strict=True)
    assert "language_model.layers.1.gen.q_proj.weight" in janus_report.initialised
    assert any("exact GELU" in n for n in janus_report.notes)  # tiny tower uses tanh GELU
    model = UniX(_cfg())
    report = import_unix_release(model, _unix_dir(tmp_path, with_vae=False), strict=True)
    src = load_foreign_state_dict(tmp_path / "unix")
    assert torch.equal(
        model.language_model.layers[1].gen.o_proj.weight,
        src["language_model.model.layers.1.self_attn.o_proj_moe_gen.weight"],
    )
    assert len(report.loaded) == len(
        [k for k in model.state_dict() if not k.startswith(("vae.", "repa_projector."))]
    )


def test_vae_layout_differences_are_named(tmp_path: Path) -> None:
    from unixlib.model.unix import UniX

    report = import_unix_release(
        UniX(_cfg()), _unix_dir(tmp_path), strict=False
    )  # gray tiny VAE vs LDM RGB
    notes = "\n".join(report.notes)
    assert "VAE in_channels: checkpoint 3 vs model 1" in notes
    assert "VAE down_block_types" in notes
    assert not report.ok and any(".attentions." in k for k in report.unexpected)
