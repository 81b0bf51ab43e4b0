"""The MoT decoder: state-dict names, routing, RoPE, padding and the KV cache."""

from __future__ import annotations

import pytest
import torch

from unixlib.data.packing import SpecialTokens, generation_plan, pack, understanding_plan
from unixlib.model.config import preset
from unixlib.model.mot import KVCache, MoTDecoderLayer, MoTLanguageModel
from unixlib.model.rope import apply_rope, rope_cos_sin
from unixlib.model.routing import Routing

CFG = preset("tiny", num_layers=2)
SP = SpecialTokens.from_mapping(CFG.special_ids())


def make_lm(mot: bool = True, seed: int = 0) -> MoTLanguageModel:
    torch.manual_seed(seed)
    lm = MoTLanguageModel(preset("tiny", num_layers=2, mot=mot))
    for p in lm.parameters():  # random, non-trivial weights (norms too)
        torch.nn.init.normal_(p, mean=1.0 if p.dim() == 1 else 0.0, std=0.1)
    return lm.eval()


def mixed_batch():
    plans = [generation_plan([5, 6, 7], (2, 2), SP), understanding_plan([8], [9, 10], (2, 2), SP)]
    return pack(plans, SP.pad)


def run(lm: MoTLanguageModel, batch, h: torch.Tensor) -> torch.Tensor:
    route = torch.cat([batch.und_index, batch.gen_index])
    routing = Routing(route, batch.und_index.numel(), *batch.input_ids.shape)
    cos, sin = rope_cos_sin(batch.position_ids, CFG.head_dim, CFG.rope_theta)
    out, _ = lm(h, routing, cos, sin, batch.attention_mask)
    return out


def test_state_dict_names_follow_the_contract():
    keys = set(MoTLanguageModel(CFG).state_dict())
    for branch in ("und", "gen"):
        p = f"layers.1.{branch}."
        for name in (
            "input_norm.weight",
            "q_proj.weight",
            "q_proj.bias",
            "k_proj.bias",
            "v_proj.bias",
            "q_norm.weight",
            "k_norm.weight",
            "o_proj.weight",
            "post_norm.weight",
            "mlp.gate_proj.weight",
            "mlp.up_proj.weight",
            "mlp.down_proj.weight",
        ):
            assert p + name in keys
    assert {"embed_tokens.weight", "norm_und.weight", "norm_gen.weight"} <= keys
    assert "layers.0.und.o_proj.bias" not in keys
    shared = set(MoTLanguageModel(preset("tiny", num_layers=2, mot=False)).state_dict())
    assert not any(".gen." in k or "norm_gen" in k for k in shared)
    assert len(keys) - len(shared) == 2 * 14 + 1  # 14 tensors per gen block, plus norm_gen


def test_layer_shapes():
    batch = mixed_batch()
    lm = make_lm()
    n = batch.und_index.numel() + batch.gen_index.numel()
    out = run(lm, batch, torch.randn(n, CFG.hidden_size))
    assert out.shape == (n, CFG.hidden_size)
    assert torch.isfinite(out).all()


def test_mot_with_copied_weights_equals_shared_weights():
    """Routing is exact: with gen == und, MoT computes what one shared weight set computes."""
    batch = mixed_batch()
    mot, shared = make_lm(True), make_lm(False)
    shared.load_state_dict(
        {k: v for k, v in mot.state_dict().items() if ".gen." not in k and "norm_gen" not in k}
    )
    mot.init_gen_from_und()
    h = torch.randn(batch.und_index.numel() + batch.gen_index.numel(), CFG.hidden_size)
    torch.testing.assert_close(run(mot, batch, h), run(shared, batch, h))
    # and different gen weights change exactly the generation rows
    with torch.no_grad():
        for layer in mot.layers:
            layer.gen.mlp.down_proj.weight.mul_(3.0)
    n_und = batch.und_index.numel()
    a, b = run(mot, batch, h), run(shared, batch, h)
    torch.testing.assert_close(a[:n_und], b[:n_und])
    assert (a[n_und:] - b[n_und:]).abs().max() > 1e-3


def test_padding_does_not_change_real_tokens():
    short = pack([generation_plan([5], (2, 2), SP)], SP.pad)
    padded = pack([generation_plan([5], (2, 2), SP)], SP.pad, pad_to_multiple_of=16)
    lm = make_lm()
    h = torch.randn(7, CFG.hidden_size)
    torch.testing.assert_close(run(lm, short, h), run(lm, padded, h))


def test_routing_identity_and_validation():
    assert Routing.dense(2, 3, "und", torch.device("cpu")).identity
    assert Routing.dense(2, 3, "gen", torch.device("cpu")).n_und == 0
    assert not Routing(torch.tensor([0, 2]), 1, 1, 3).identity
    with pytest.raises(ValueError, match="n_und"):
        Routing(torch.tensor([0, 1]), 3, 1, 2)


def test_rope_is_relative_and_norm_preserving():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 64), torch.randn(1, 1, 1, 64)

    def rot(x, pos):
        cos, sin = rope_cos_sin(torch.tensor([[pos]]), 64, 1e4)
        return apply_rope(x, cos, sin)

    assert torch.allclose(rot(q, 0), q)  # position 0 is the identity
    assert torch.allclose(rot(q, 7).norm(), q.norm())
    s1 = (rot(q, 9) * rot(k, 4)).sum()
    s2 = (rot(q, 105) * rot(k, 100)).sum()  # same offset 5
    assert torch.allclose(s1, s2, atol=1e-4)
    assert not torch.allclose(s1, (rot(q, 9) * rot(k, 5)).sum(), atol=1e-3)


def test_rope_frequencies_by_hand():
    cos, sin = rope_cos_sin(torch.tensor([[2]]), 4, 100.0)
    # inv_freq = 100 ** -(0/4, 2/4) = (1, 0.1); angles (2, 0.2) repeated for both halves
    expected = torch.tensor([2.0, 0.2, 2.0, 0.2])
    torch.testing.assert_close(cos[0, 0], expected.cos())
    torch.testing.assert_close(sin[0, 0], expected.sin())


def test_kv_cache_matches_full_attention_and_rejects_overflow():
    """Prefix then one token with the cache == the whole sequence at once (one layer)."""
    torch.manual_seed(0)
    layer = MoTDecoderLayer(CFG, 0).eval()
    x = torch.randn(1, 6, CFG.hidden_size)
    pos = torch.arange(6)[None]
    cos, sin = rope_cos_sin(pos, CFG.head_dim, CFG.rope_theta)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()[None, None]
    full = layer([x[0]], Routing.dense(1, 6, "und", x.device), cos, sin, causal)[0]
    cache = KVCache(num_layers=1, capacity=6)
    layer(
        [x[0, :5]],
        Routing.dense(1, 5, "und", x.device),
        cos[:, :5],
        sin[:, :5],
        causal[..., :5, :5],
        cache,
    )
    cache.length = 5
    last = layer(
        [x[0, 5:]],
        Routing.dense(1, 1, "und", x.device),
        cos[:, 5:],
        sin[:, 5:],
        causal[..., 5:, :],
        cache,
    )[0]
    torch.testing.assert_close(last, full[5:], atol=1e-5, rtol=1e-5)
    cache.length = 6
    with pytest.raises(ValueError, match="overflow"):
        cache.update(0, torch.zeros(1, 4, 1, 64), torch.zeros(1, 4, 1, 64))


def test_init_gen_from_und_requires_mot():
    with pytest.raises(ValueError, match="mot=False"):
        make_lm(False).init_gen_from_und()
