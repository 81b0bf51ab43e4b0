"""The packed forward equals the padded reference: logits at the answer positions, flow
predictions, losses and every parameter gradient, for random mixed batches of every task
(fp32; tolerance atol 1e-5, rtol 1e-4), with MoT on and off, freeze_und, activation
checkpointing, grouped-query attention, REPA and the final_states conditioning ablation."""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch
from packed_helpers import TASKS, model_inputs, random_plans
from train_helpers import TINY_MODEL

from unixlib.data.packing import SpecialTokens, pack
from unixlib.model.config import preset
from unixlib.model.unix import UniX

ATOL, RTOL = 1e-5, 1e-4


def _model(**overrides: Any) -> UniX:
    torch.manual_seed(0)
    cfg = preset("tiny", **{**TINY_MODEL, "image_size_und": 32, "image_size_gen": 32, **overrides})
    model = UniX(cfg).train()
    torch.nn.init.normal_(model.llm2vae.weight, std=0.02)  # zero-initialised: v would be 0
    return model


def _run(model: UniX, batch, inputs: dict, repa: bool) -> dict[str, Any]:
    """Losses, lm_head / llm2vae outputs and parameter gradients of one forward/backward."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        model.lm_head.register_forward_hook(lambda m, i, o: seen.__setitem__("logits", o)),
        model.llm2vae.register_forward_hook(lambda m, i, o: seen.__setitem__("velocity", o)),
    ]
    kw = dict(inputs)
    if repa and inputs["latents"] is not None:
        n, dt = len(inputs["latents"]), model.config.repa_target_dim
        kw["repa_target"] = torch.randn(n, 4, dt, generator=torch.Generator().manual_seed(1))
        kw["repa_grid"] = (2, 2)
    model.zero_grad(set_to_none=True)
    out = model(batch, **kw)
    out["loss"].backward()
    for h in hooks:
        h.remove()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {"out": out, "seen": seen, "grads": grads}


def _plans(model: UniX, seed: int, layout: str, tasks=TASKS):
    cfg = model.config
    special = SpecialTokens.from_mapping(cfg.special_ids())
    vit, lat = cfg.vit_grid, cfg.latent_grid(cfg.image_size_gen)
    rng = random.Random(seed)
    return random_plans(
        rng, 5, layout, special, (vit, vit), (lat, lat), cfg.vocab_size, tasks=tasks
    )


def _assert_same(model: UniX, plans, repa: bool = False, multiple: int = 1) -> None:
    inputs = model_inputs(model.config, plans)
    ref = _run(model, pack(plans, model.config.pad_id), inputs, repa)
    got = _run(model, pack(plans, model.config.pad_id, multiple, packed=True), inputs, repa)
    for key in ("ce", "flow", "repa", "loss", "n_ce_tokens", "n_flow_tokens"):
        torch.testing.assert_close(got["out"][key], ref["out"][key], atol=ATOL, rtol=RTOL)
    assert got["seen"].keys() == ref["seen"].keys()
    for key in ref["seen"]:  # logits at the answer positions, velocities of every latent token
        torch.testing.assert_close(got["seen"][key], ref["seen"][key], atol=ATOL, rtol=RTOL)
    assert got["grads"].keys() == ref["grads"].keys() and ref["grads"]
    for name, grad in ref["grads"].items():
        torch.testing.assert_close(got["grads"][name], grad, atol=ATOL, rtol=RTOL, msg=name)


@pytest.mark.parametrize("layout", ["ours", "official"])
@pytest.mark.parametrize("mot", [True, False])
def test_packed_equals_padded_for_mixed_batches(layout: str, mot: bool) -> None:
    model = _model(mot=mot, sequence_layout=layout)
    for seed in range(2):
        _assert_same(model, _plans(model, seed, layout))


@pytest.mark.parametrize("tasks", [("und",), ("gen",), ("uncond",), ("gen", "uncond")])
def test_packed_equals_padded_per_task(tasks) -> None:
    model = _model()
    _assert_same(model, _plans(model, 3, "official", tasks))


def test_packed_equals_padded_with_freeze_und_checkpointing_gqa_repa_and_a_tail() -> None:
    model = _model(num_heads=4, num_kv_heads=2)
    model.language_model.freeze_und = True
    model.language_model.gradient_checkpointing = True
    _assert_same(model, _plans(model, 4, "ours"), repa=True, multiple=16)


def test_packed_equals_padded_under_final_states_conditioning() -> None:
    model = _model(gen_conditioning="final_states")
    _assert_same(model, _plans(model, 5, "ours", ("gen", "uncond")))
