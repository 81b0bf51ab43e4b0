"""Packed training: the switch and the token budget in TrainConfig, the budget's split of a
micro-batch (same gradient as the unsplit one), and the training loop packed by default."""

from __future__ import annotations

import itertools
import json
import random

import pytest
import torch
from packed_helpers import random_plans
from train_helpers import data_run, losses, tiny_config

from unixlib.train import loop
from unixlib.train.batches import split_by_tokens
from unixlib.train.config import TrainConfig

ATOL, RTOL = 1e-6, 1e-4


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return data_run(tmp_path_factory)


def test_config_fields_are_validated_and_written() -> None:
    cfg = TrainConfig()
    assert cfg.packing is True and cfg.max_tokens == 0
    assert cfg.to_dict()["packing"] is True and cfg.to_dict()["max_tokens"] == 0
    for bad, match in (
        ({"packing": "yes"}, "packing must be true or false"),
        ({"max_tokens": -1}, "max_tokens must be >= 0"),
        ({"max_tokens": 2.5}, "max_tokens must be an int"),
        ({"max_tokens": True}, "max_tokens must be an int"),
    ):
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)


def test_split_by_tokens_groups_in_order_and_names_a_long_sample() -> None:
    plans = random_plans(random.Random(0), 8, "ours")
    lengths = [p.length for p in plans]
    budget = max(lengths) + 5
    groups = split_by_tokens(plans, budget)
    assert [i for g in groups for i in g] == list(range(8))  # in order, every plan once
    assert all(sum(lengths[i] for i in g) <= budget for g in groups)
    # as few as greedy allows: each group's successor's first plan did not fit
    for g, nxt in itertools.pairwise(groups):
        assert sum(lengths[i] for i in g) + lengths[nxt[0]] > budget
    assert split_by_tokens(plans, sum(lengths)) == [list(range(8))]
    long = max(range(8), key=lambda i: lengths[i])
    with pytest.raises(ValueError) as err:
        split_by_tokens(plans, max(lengths) - 1)
    msg = str(err.value)
    assert f"sample {plans[long].sample_id}" in msg
    assert f"{lengths[long]} tokens" in msg and f"max_tokens={max(lengths) - 1}" in msg


def _longest(cfg: TrainConfig) -> int:
    """The longest sample of the run's micro-batches."""
    source = loop._setup(cfg, False, ()).source
    segments = [s for step in range(cfg.steps) for s in source.micro_batch(step, 0).batch.segments]
    return max(end - start for start, end in segments)


def _grads(run, pieces, totals) -> dict[str, torch.Tensor]:
    """Parameter gradients of the forwards ``pieces``, weighted as the training loop does."""
    run.model.zero_grad(set_to_none=True)
    weights = run.cfg.ce_weight, run.cfg.flow_weight, run.cfg.repa_weight
    for mb in pieces:
        out = loop._step_losses(
            run.model, run.model, mb, run.device, run.repa_target, run.latent_cache
        )
        loss, _ = loop.weighted_loss(out, mb, totals, weights)
        loss.backward()
    return {n: p.grad.clone() for n, p in run.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("stage", [1, 3])
def test_token_budget_split_gives_the_unsplit_gradient(data, tmp_path, stage: int) -> None:
    kw = {"task_ratio": (1, 1), "trainable": ("connector", "und", "gen")} if stage == 3 else {}
    kw["batch_size"] = 8
    longest = _longest(tiny_config(data, tmp_path / "probe", stage, steps=1, **kw))
    cfg = tiny_config(data, tmp_path / "run", stage, max_tokens=2 * longest, **kw)
    run = loop._setup(cfg, False, ())
    run.model.train()
    torch.nn.init.normal_(run.model.llm2vae.weight, std=0.02)  # a live generation head
    whole = run.source.micro_batch(0, 0)
    pieces = run.source.micro_batches(0, 0)
    assert len(pieces) >= 2 and all(int(p.batch.lengths.sum()) <= cfg.max_tokens for p in pieces)
    totals = (whole.n_ce, whole.n_flow, whole.n_gen)
    assert tuple(sum(getattr(p, k) for p in pieces) for k in ("n_ce", "n_flow", "n_gen")) == totals
    ref, got = _grads(run, [whole], totals), _grads(run, pieces, totals)
    assert ref.keys() == got.keys() and ref
    for name, grad in ref.items():
        torch.testing.assert_close(got[name], grad, atol=ATOL, rtol=RTOL, msg=name)
    more = run.source.micro_batches(0, 0, min_pieces=len(pieces) + 1)  # ranks equalising
    assert len(more) == len(pieces) + 1
    for name, grad in _grads(run, more, totals).items():
        torch.testing.assert_close(grad, ref[name], atol=ATOL, rtol=RTOL, msg=name)
    run.source.max_tokens = longest - 1
    with pytest.raises(ValueError, match=f"more than max_tokens={longest - 1}"):
        run.source.micro_batches(0, 0)


def test_training_is_packed_by_default_and_matches_the_padded_path(data, tmp_path, capsys):
    packed = loop.train(tiny_config(data, tmp_path / "packed", steps=3), progress=False)
    line = capsys.readouterr().out
    assert "packed batches, attention sdpa-per-sample" in line
    saved = json.loads((packed.run_dir / "config.json").read_text())
    assert saved["packing"] is True and saved["max_tokens"] == 0
    padded = loop.train(
        tiny_config(data, tmp_path / "padded", steps=3, packing=False), progress=False
    )
    assert "padded batches, attention sdpa-dense" in capsys.readouterr().out
    # the same samples: the first step's loss and gradient norm agree (fp32 sums in another
    # order); later steps drift only through AdamW's sign-like first updates of tiny gradients
    for key in ("loss", "grad_norm"):
        a, b = losses(packed.run_dir, key)[0], losses(padded.run_dir, key)[0]
        assert a == pytest.approx(b, rel=1e-5)
    cap = _longest(tiny_config(data, tmp_path / "probe", steps=3)) + 8
    budget = loop.train(
        tiny_config(data, tmp_path / "budget", steps=3, max_tokens=cap), progress=False
    )
    assert f"max_tokens {cap}" in capsys.readouterr().out
    for key in ("loss", "grad_norm"):
        a, b = losses(budget.run_dir, key)[0], losses(packed.run_dir, key)[0]
        assert a == pytest.approx(b, rel=1e-5)
