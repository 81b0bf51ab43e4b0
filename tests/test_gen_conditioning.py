"""The coupling ablation's "final_states" conditioning, and loading a stage-1 checkpoint into the
ablation models (mot=False, final_states)."""

from __future__ import annotations

import pytest
import torch
from test_unix import gen_batch, make_model, mixed_inputs, und_batch

from unixlib.model.saving import save_pretrained
from unixlib.model.unix import UniX
from unixlib.train.setup import set_trainable


def velocities(model, batch, latents) -> torch.Tensor:
    """The flow loss of a fixed draw (a scalar that depends on every latent velocity)."""
    gen = torch.Generator().manual_seed(0)
    return model(batch, None, latents, generator=gen)["flow"]


def test_final_states_starts_from_the_identity_and_is_cached_exactly():
    model = make_model(gen_conditioning="final_states", initializer_range=0.1).eval()
    torch.testing.assert_close(model.cond_proj.weight, torch.eye(model.config.hidden_size))
    kw = {"steps": 5, "seed": 7, "decode": False, "cfg_interval": (0.0, 1.0)}
    a = model.generate_image([[5, 6, 7], [8]], reuse_context=True, **kw)
    b = model.generate_image([[5, 6, 7], [8]], reuse_context=False, **kw)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    c = model.generate_image([[9, 9, 9], [8]], reuse_context=True, **kw)
    assert (a[0] - c[0]).abs().max() > 1e-3  # the report still matters
    torch.testing.assert_close(a[1], c[1], atol=1e-5, rtol=1e-5)  # rows are independent


def test_generation_reads_the_final_understanding_states_only_under_final_states():
    """The understanding branch's final norm is never on the path of a generation token under
    MoT attention, and is the only way in under final_states; the understanding keys of the
    blocks reach the latents under attention directly."""
    batch, latents = gen_batch()
    for mode, norm_matters in (("attention", False), ("final_states", True)):
        model = make_model(gen_conditioning=mode, initializer_range=0.1)
        before = velocities(model, batch, latents)
        with torch.no_grad():
            model.language_model.norm_und.weight.mul_(3.0)
        changed = (velocities(model, batch, latents) - before).abs().item() > 1e-6
        assert changed == norm_matters, mode


def test_final_states_trains_only_generation_and_projection():
    batch, latents = gen_batch()
    model = make_model(gen_conditioning="final_states")
    set_trainable(model, ("gen",))
    model.language_model.freeze_und = True
    model(batch, None, latents, generator=torch.Generator().manual_seed(0))["loss"].backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert "cond_proj.weight" in grads
    assert any(".gen." in n for n in grads)
    assert not any(".und." in n or "norm_und" in n for n in grads)


def test_final_states_rejects_understanding_examples():
    model = make_model(gen_conditioning="final_states")
    batch, pixels, latents = mixed_inputs()
    with pytest.raises(ValueError, match="generation only"):
        model(batch, pixels, latents)


def test_final_states_needs_a_generation_branch():
    with pytest.raises(ValueError, match="needs mot=True"):
        make_model(gen_conditioning="final_states", mot=False)
    with pytest.raises(ValueError, match="gen_conditioning"):
        make_model(gen_conditioning="cross_attention")


def test_stage1_checkpoint_loads_into_the_ablation_models(tmp_path):
    """A MoT checkpoint loads as a shared-weight model (its generation copies dropped: the
    understanding outputs are unchanged) and as a final_states model (cond_proj new, identity);
    any other mismatch is an error."""
    model = make_model().eval()
    save_pretrained(model, tmp_path / "mot")
    batch, pixels = und_batch()
    shared = UniX.from_pretrained(tmp_path / "mot", mot=False).eval()
    assert not any(".gen." in n for n, _ in shared.named_parameters())
    torch.testing.assert_close(shared(batch, pixels)["ce"], model(batch, pixels)["ce"])
    stacked = UniX.from_pretrained(tmp_path / "mot", gen_conditioning="final_states")
    torch.testing.assert_close(stacked.cond_proj.weight, torch.eye(stacked.config.hidden_size))
    save_pretrained(stacked, tmp_path / "stacked")
    again = UniX.from_pretrained(tmp_path / "stacked")
    assert again.config.gen_conditioning == "final_states"
    # A final_states checkpoint loaded as attention has an unexpected cond_proj: an error.
    with pytest.raises(ValueError, match="cond_proj"):
        UniX.from_pretrained(tmp_path / "stacked", gen_conditioning="attention")
    # A shared checkpoint cannot grow a generation branch out of nothing.
    save_pretrained(shared, tmp_path / "shared")
    with pytest.raises(ValueError, match="missing"):
        UniX.from_pretrained(tmp_path / "shared", mot=True)
