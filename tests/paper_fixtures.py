"""Paper-scale fixture directories that cost no disk: real key names and real shapes, no data.

Each writer mimics the layout of a real download at full size:

* :func:`write_janus_pro`: a Janus-Pro-1B directory (``pytorch_model.bin`` + ``tokenizer.json``),
  key names of deepseek-ai/Janus (``language_model.model.*`` Llama, timm SigLIP-L/16 under
  ``vision_model.vision_tower.``, ``aligner.layers.{0,2}``, the VQ ``gen_*`` path);
* :func:`write_unix_release`: the official UniX checkpoint (``model.safetensors`` with the
  ``*_moe_gen`` twins, ``vit_model.vision_tower.``, ``vae2llm``/``llm2vae``/``time_embedder``,
  and ``vae/kl-f16d16.ckpt`` with its LDM yaml);
* :func:`write_mimic_cxr_jpg`: MIMIC-CXR-JPG's CSVs and folders for a few studies, plus the
  LLaVA-Rad / CheXGenBench test annotation CSV.

Torch files hold meta tensors (``torch.save`` stores no bytes for them); the safetensors file
is a real header followed by a *sparse* hole of the full data length. Loading them with
``meta=True`` (the dry run) sees exactly the shapes of the real checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from unixlib.data.schema import CHEXPERT_NAMES
from unixlib.data.text.tokenizer import train_bpe

D, LAYERS, INTER, VOCAB = 2048, 24, 5632, 102400  # Janus-Pro-1B LLM
DV, VIT_LAYERS, VIT_INTER, PATCH, VIT_TOKENS = 1024, 24, 4096, 16, 576  # SigLIP-L/16 @ 384
LDM_KL_F16 = {
    "double_z": True,
    "z_channels": 16,
    "resolution": 256,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 128,
    "ch_mult": [1, 1, 2, 2, 4],
    "num_res_blocks": 2,
    "attn_resolutions": [16],
    "dropout": 0.0,
}


def _timm_vit(prefix: str) -> dict[str, tuple[int, ...]]:
    shapes = {
        f"{prefix}patch_embed.proj.weight": (DV, 3, PATCH, PATCH),
        f"{prefix}patch_embed.proj.bias": (DV,),
        f"{prefix}pos_embed": (1, VIT_TOKENS, DV),
        f"{prefix}norm.weight": (DV,),
        f"{prefix}norm.bias": (DV,),
        f"{prefix}attn_pool.latent": (1, 1, DV),
        f"{prefix}attn_pool.q.weight": (DV, DV),
        f"{prefix}attn_pool.kv.weight": (2 * DV, DV),
        f"{prefix}attn_pool.proj.weight": (DV, DV),
    }
    for i in range(VIT_LAYERS):
        b = f"{prefix}blocks.{i}."
        for name, shape in (
            ("norm1", (DV,)),
            ("norm2", (DV,)),
            ("attn.qkv", (3 * DV, DV)),
            ("attn.proj", (DV, DV)),
            ("mlp.fc1", (VIT_INTER, DV)),
            ("mlp.fc2", (DV, VIT_INTER)),
        ):
            shapes[f"{b}{name}.weight"] = shape
            shapes[f"{b}{name}.bias"] = (shape[0],)
    return shapes


def _llm(release: bool, vocab: int = VOCAB) -> dict[str, tuple[int, ...]]:
    shapes = {
        "language_model.model.embed_tokens.weight": (vocab, D),
        "language_model.model.norm.weight": (D,),
        "language_model.lm_head.weight": (vocab, D),
    }
    if release:
        shapes["language_model.model.norm_moe_gen.weight"] = (D,)
    for i in range(LAYERS):
        b = f"language_model.model.layers.{i}."
        for s in ("", "_moe_gen") if release else ("",):
            for proj in "qkvo":
                shapes[f"{b}self_attn.{proj}_proj{s}.weight"] = (D, D)
                if release and proj != "o":
                    shapes[f"{b}self_attn.{proj}_proj{s}.bias"] = (D,)
            if release:
                shapes[f"{b}self_attn.q_norm{s}.weight"] = (D // 16,)
                shapes[f"{b}self_attn.k_norm{s}.weight"] = (D // 16,)
            shapes[f"{b}mlp{s}.gate_proj.weight"] = (INTER, D)
            shapes[f"{b}mlp{s}.up_proj.weight"] = (INTER, D)
            shapes[f"{b}mlp{s}.down_proj.weight"] = (D, INTER)
            shapes[f"{b}input_layernorm{s}.weight"] = (D,)
            shapes[f"{b}post_attention_layernorm{s}.weight"] = (D,)
    return shapes


def _save_meta(shapes: dict[str, tuple[int, ...]], path: Path, wrap: str = "") -> None:
    """A torch file of meta tensors (no data bytes), optionally under ``{wrap: ...}``."""
    state = {k: torch.empty(v, dtype=torch.bfloat16, device="meta") for k, v in shapes.items()}
    torch.save({wrap: state} if wrap else state, path)


def _save_sparse_safetensors(shapes: dict[str, tuple[int, ...]], path: Path) -> None:
    """A valid safetensors header (BF16) followed by a hole of the full data length."""
    header, offset = {}, 0
    for key, shape in shapes.items():
        n = 2 * int(torch.tensor(shape).prod()) if shape else 2
        header[key] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        f.truncate(8 + len(raw) + offset)  # sparse: no blocks are written


def _tokenizer_json(out: Path) -> None:
    """A stand-in ``tokenizer.json`` (a small BPE; Janus-Pro's ids index the 102,400 rows)."""
    tok = train_bpe(["FINDINGS: clear lungs. IMPRESSION: normal chest."] * 4, vocab_size=300)
    tok.tokenizer.save(str(out / "tokenizer.json"))


def write_janus_pro(out: Path, drop: str = "", vocab: int = VOCAB) -> Path:
    """A Janus-Pro-1B directory; ``drop`` removes one key, ``vocab`` changes the rows."""
    out.mkdir(parents=True, exist_ok=True)
    shapes = {**_llm(False, vocab), **_timm_vit("vision_model.vision_tower.")}
    shapes |= {
        "aligner.layers.0.weight": (D, DV),
        "aligner.layers.0.bias": (D,),
        "aligner.layers.2.weight": (D, D),
        "aligner.layers.2.bias": (D,),
        "gen_vision_model.encoder.conv_in.weight": (128, 3, 3, 3),
        "gen_embed.weight": (16384, 8),
        "gen_aligner.layers.0.weight": (D, 8),
        "gen_head.vision_head.weight": (16384, D),
    }
    shapes.pop(drop, None)
    _save_meta(shapes, out / "pytorch_model.bin")
    (out / "config.json").write_text(json.dumps({"model_type": "multi_modality"}) + "\n")
    _tokenizer_json(out)
    return out


def _ldm_resnet(name: str, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    sd = {
        f"{name}.norm1.weight": (cin,),
        f"{name}.norm1.bias": (cin,),
        f"{name}.conv1.weight": (cout, cin, 3, 3),
        f"{name}.conv1.bias": (cout,),
        f"{name}.norm2.weight": (cout,),
        f"{name}.norm2.bias": (cout,),
        f"{name}.conv2.weight": (cout, cout, 3, 3),
        f"{name}.conv2.bias": (cout,),
    }
    if cin != cout:
        sd |= {
            f"{name}.nin_shortcut.weight": (cout, cin, 1, 1),
            f"{name}.nin_shortcut.bias": (cout,),
        }
    return sd


def _ldm_attn(name: str, c: int) -> dict[str, tuple[int, ...]]:
    sd = {f"{name}.norm.weight": (c,), f"{name}.norm.bias": (c,)}
    for conv in ("q", "k", "v", "proj_out"):
        sd |= {f"{name}.{conv}.weight": (c, c, 1, 1), f"{name}.{conv}.bias": (c,)}
    return sd


def ldm_vae_shapes(dd: dict) -> dict[str, tuple[int, ...]]:
    """Keys and shapes as latent-diffusion's Encoder/Decoder construct them from ``ddconfig``."""
    ch, mult, z = dd["ch"], dd["ch_mult"], dd["z_channels"]
    sd = {"encoder.conv_in.weight": (ch, 3, 3, 3), "encoder.conv_in.bias": (ch,)}
    res, cin = dd["resolution"], ch
    for i, m in enumerate(mult):
        for j in range(dd["num_res_blocks"]):
            sd |= _ldm_resnet(f"encoder.down.{i}.block.{j}", cin, ch * m)
            cin = ch * m
            if res in dd["attn_resolutions"]:
                sd |= _ldm_attn(f"encoder.down.{i}.attn.{j}", cin)
        if i != len(mult) - 1:
            sd |= {
                f"encoder.down.{i}.downsample.conv.weight": (cin, cin, 3, 3),
                f"encoder.down.{i}.downsample.conv.bias": (cin,),
            }
            res //= 2
    for part, cout in (("encoder", 2 * z), ("decoder", None)):
        c = ch * mult[-1]
        sd |= _ldm_resnet(f"{part}.mid.block_1", c, c) | _ldm_attn(f"{part}.mid.attn_1", c)
        sd |= _ldm_resnet(f"{part}.mid.block_2", c, c)
        if cout:
            sd |= {
                f"{part}.norm_out.weight": (c,),
                f"{part}.norm_out.bias": (c,),
                f"{part}.conv_out.weight": (cout, c, 3, 3),
                f"{part}.conv_out.bias": (cout,),
            }
    cin = ch * mult[-1]
    sd |= {"decoder.conv_in.weight": (cin, z, 3, 3), "decoder.conv_in.bias": (cin,)}
    for i in reversed(range(len(mult))):
        for j in range(dd["num_res_blocks"] + 1):
            sd |= _ldm_resnet(f"decoder.up.{i}.block.{j}", cin, ch * mult[i])
            cin = ch * mult[i]
            if res in dd["attn_resolutions"]:
                sd |= _ldm_attn(f"decoder.up.{i}.attn.{j}", cin)
        if i != 0:
            sd |= {
                f"decoder.up.{i}.upsample.conv.weight": (cin, cin, 3, 3),
                f"decoder.up.{i}.upsample.conv.bias": (cin,),
            }
            res *= 2
    sd |= {
        "decoder.norm_out.weight": (cin,),
        "decoder.norm_out.bias": (cin,),
        "decoder.conv_out.weight": (3, cin, 3, 3),
        "decoder.conv_out.bias": (3,),
        "quant_conv.weight": (2 * z, 2 * z, 1, 1),
        "quant_conv.bias": (2 * z,),
        "post_quant_conv.weight": (z, z, 1, 1),
        "post_quant_conv.bias": (z,),
        "loss.logvar": (),
    }
    return sd


def write_kl_f16_vae(out: Path) -> Path:
    """``kl-f16d16.ckpt`` (a Lightning ``state_dict``) and ``kl-f16d16.yaml`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    _save_meta(ldm_vae_shapes(LDM_KL_F16), out / "kl-f16d16.ckpt", wrap="state_dict")
    cfg = {"model": {"params": {"embed_dim": 16, "ddconfig": LDM_KL_F16}}}
    (out / "kl-f16d16.yaml").write_text(yaml.safe_dump(cfg))
    return out / "kl-f16d16.ckpt"


def write_unix_release(out: Path, drop: str = "") -> Path:
    """The official UniX directory: ``model.safetensors`` (sparse), ``vae/``, tokenizer."""
    out.mkdir(parents=True, exist_ok=True)
    shapes = {**_llm(True), **_timm_vit("vit_model.vision_tower.")}
    shapes |= {
        "connector.layers.0.weight": (D, DV),
        "connector.layers.0.bias": (D,),
        "connector.layers.2.weight": (D, D),
        "connector.layers.2.bias": (D,),
        "vae2llm.weight": (D, 16),
        "vae2llm.bias": (D,),
        "llm2vae.weight": (16, D),
        "llm2vae.bias": (16,),
        "time_embedder.mlp.0.weight": (D, 256),
        "time_embedder.mlp.0.bias": (D,),
        "time_embedder.mlp.2.weight": (D, D),
        "time_embedder.mlp.2.bias": (D,),
        "vit_pos_embed.pos_embed": (VIT_TOKENS, D),
        "latent_pos_embed.pos_embed": (32 * 32, D),
    }
    shapes.pop(drop, None)
    _save_sparse_safetensors(shapes, out / "model.safetensors")
    write_kl_f16_vae(out / "vae")
    _tokenizer_json(out)
    return out


TEST_STUDIES = [
    ("10000032", "50414267", "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014"),
    ("10000033", "50414268", "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962"),  # not annotated
]
TRAIN_STUDIES = [("10000764", "57375967", "096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4")]


def write_raddino(out: Path) -> Path:
    """A RAD-DINO directory as microsoft/rad-dino ships it, shrunk: a tiny ``Dinov2Model``
    (``config.json``, ``model.safetensors``) and its ``preprocessor_config.json`` (the unit
    tests' builder, ``test_eval_encoders``)."""
    from test_eval_encoders import _tiny_raddino_with_processor

    out.mkdir(parents=True, exist_ok=True)
    _tiny_raddino_with_processor(out)
    return out


def write_evaluators(root: Path) -> dict[str, Path]:
    """Tiny local copies of the paper's evaluators, each in its package's own format and with
    its real key names, built by the unit tests' builders: CheXbert (``chexbert.pth`` + a
    bert-base-uncased-style folder), RadGraph (``radgraph/``: config.json, vocabulary/,
    weights.th + its BERT folder), BioViL-T (BiomedVLP-BioViL-T's folder) and RAD-DINO.
    Returns notebook 05's parameter -> path."""
    from test_biovil import _write as write_biovil
    from test_chexbert import _bert_dir, _save, _state_dict
    from test_radgraph import _model_dir

    (root / "chexbert").mkdir(parents=True, exist_ok=True)
    bert = _bert_dir(root / "chexbert")
    checkpoint = _save(_state_dict(bert), root / "chexbert" / "chexbert.pth")
    (root / "radgraph").mkdir(parents=True, exist_ok=True)
    radgraph = _model_dir(root / "radgraph", max_length=64)  # its tiny BERT's 64 positions
    return {
        "chexbert_checkpoint": checkpoint,
        "chexbert_bert_dir": bert,
        "radgraph_model": radgraph,
        "radgraph_bert_dir": root / "radgraph" / "bert",
        "biovil_dir": _widen_positions(write_biovil(root / "BiomedVLP-BioViL-T")),
        "raddino_dir": write_raddino(root / "rad-dino"),
    }


def _widen_positions(biovil: Path, positions: int = 512) -> Path:
    """CXR-BERT's 512 positions in the tiny BioViL-T (its builder has 24), so that prompts of
    a real length fit (hi-ml, and so ``BioViLT``, refuses a longer text instead of cutting it)."""
    config = json.loads((biovil / "config.json").read_text())
    state = torch.load(biovil / "pytorch_model.bin", weights_only=True)
    key = "bert.embeddings.position_embeddings.weight"
    torch.manual_seed(0)
    state[key] = torch.randn(positions, state[key].shape[1]) * 0.02
    state.pop("bert.embeddings.position_ids", None)
    torch.save(state, biovil / "pytorch_model.bin")
    config["max_position_embeddings"] = positions
    (biovil / "config.json").write_text(json.dumps(config))
    return biovil


def write_mimic_cxr_jpg(root: Path, with_annotations: bool = True) -> Path:
    """MIMIC-CXR-JPG's layout for three studies (no images are needed by the dry run's checks
    of paths and columns): metadata, split and CheXpert CSVs, ``files/``, reports, the
    LLaVA-Rad / CheXGenBench test and training annotation CSVs and the release's understanding
    test set (``test_data.json``, both test images, as the official repository ships it)."""
    root.mkdir(parents=True, exist_ok=True)
    meta = ["dicom_id,subject_id,study_id,ViewPosition"]
    split = ["dicom_id,study_id,subject_id,split"]
    classes = list(CHEXPERT_NAMES.values())
    labels = ["subject_id,study_id," + ",".join(classes)]
    for part, studies in (("test", TEST_STUDIES), ("train", TRAIN_STUDIES)):
        for subject, study, dicom in studies:
            meta.append(f"{dicom},{subject},{study},PA")
            split.append(f"{dicom},{study},{subject},{part}")
            labels.append(f"{subject},{study},1.0" + "," * (len(classes) - 1))
            folder = root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{dicom}.jpg").write_bytes(b"")
            (folder.parent / f"s{study}.txt").write_text("FINDINGS: Mild cardiomegaly.\n")
    (root / "mimic-cxr-2.0.0-metadata.csv").write_text("\n".join(meta) + "\n")
    (root / "mimic-cxr-2.0.0-split.csv").write_text("\n".join(split) + "\n")
    (root / "mimic-cxr-2.0.0-chexpert.csv").write_text("\n".join(labels) + "\n")
    if with_annotations:
        subject, study, dicom = TEST_STUDIES[0]
        path = f"files/p{subject[:2]}/p{subject}/s{study}/{dicom}.jpg"
        (root / "LLAVARAD_ANNOTATIONS_TEST.csv").write_text(
            f"path,annotated_prompt\n{path},FINDINGS: Mild cardiomegaly.\n"
        )
        subject, study, dicom = TRAIN_STUDIES[0]
        path = f"files/p{subject[:2]}/p{subject}/s{study}/{dicom}.jpg"
        (root / "LLAVARAD_ANNOTATIONS_TRAIN.csv").write_text(
            f"path,annotated_prompt\n{path},Mild cardiomegaly.\n"
        )
        write_understanding_test(root / "test_data.json", TEST_STUDIES)
    return root


def write_understanding_test(
    path: Path, studies: list[tuple[str, str, str]], prompts: tuple[str, ...] = ()
) -> Path:
    """A release ``test_data.json``: one entry per (subject, study, dicom) of ``studies``, the
    i-th prompted with ``prompts[i]`` (default: the release's phrasings in turn)."""
    prompts = prompts or (
        "Review this X-ray and provide detailed FINDINGS.",
        "Examine this X-ray image and describe the FINDINGS and IMPRESSION.",
    )
    entries = [
        {
            "messages": [
                {"content": "<image>" + prompts[i % len(prompts)], "role": "user"},
                {"content": f"FINDINGS: Case {i}, mild cardiomegaly.", "role": "assistant"},
            ],
            "images": [f"files/p{subject[:2]}/p{subject}/s{study}/{dicom}.jpg"],
        }
        for i, (subject, study, dicom) in enumerate(studies)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=4))
    return path
