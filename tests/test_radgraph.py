"""RadGraph F1: the reward maths against hand-computed values, and the annotator on a tiny model
saved in the radgraph package's own format (config.json, vocabulary/, weights.th)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertTokenizer

from unixlib.eval.radgraph import RadGraphAnnotator, check_radgraph, split_words
from unixlib.eval.radgraph_f1 import candidates, radgraph_scores, report_reward
from unixlib.eval.radgraph_net import SpanGraphConfig, SpanGraphNet

# ---------------------------------------------------------------- the reward maths, by hand


def _ann(*entities: tuple[str, str, list]) -> dict:
    return {
        "entities": {
            str(i + 1): dict(zip(("tokens", "label", "relations"), e, strict=True))
            for i, e in enumerate(entities)
        }
    }


REF_A = _ann(
    ("Heart", "ANAT-DP", []),
    ("enlarged", "OBS-DP", [["located_at", "1"]]),
    ("effusion", "OBS-DA", []),
)
HYP_A = _ann(
    ("Heart", "ANAT-DP", []),
    ("enlarged", "OBS-DP", []),  # the relation is missing
    ("effusion", "OBS-DP", []),  # wrong label
    ("left", "ANAT-DP", []),  # not in the reference
)
# Same graph, other case: only "complete" lower-cases (and only its relational candidates).
REF_B = _ann(("heart", "ANAT-DP", []), ("enlarged", "OBS-DP", [["located_at", "1"]]))
HYP_B = _ann(("Heart", "ANAT-DP", []), ("Enlarged", "OBS-DP", [["located_at", "1"]]))


def test_candidate_sets_per_level():
    assert candidates(REF_A, "simple") == {
        ("Heart", "ANAT-DP"),
        ("enlarged", "OBS-DP"),
        ("effusion", "OBS-DA"),
    }
    assert ("enlarged", "OBS-DP", True) in candidates(REF_A, "partial")
    assert candidates(REF_A, "complete") == {
        ("Heart", "ANAT-DP"),
        ("enlarged", "OBS-DP", "located_at", "heart"),
        ("effusion", "OBS-DA"),
    }
    with pytest.raises(ValueError, match="level must be one of"):
        candidates(REF_A, "exact")


def test_report_rewards_by_hand():
    # A, simple: {Heart, enlarged} of 4 hyp / 3 ref -> P 1/2, R 2/3, F1 4/7
    assert report_reward(HYP_A, REF_A, "simple") == pytest.approx((4 / 7, 1 / 2, 2 / 3))
    # A, partial: enlarged has no relation in hyp -> only Heart matches: P 1/4, R 1/3, F1 2/7
    assert report_reward(HYP_A, REF_A, "partial") == pytest.approx((2 / 7, 1 / 4, 1 / 3))
    assert report_reward(HYP_A, REF_A, "complete") == pytest.approx((2 / 7, 1 / 4, 1 / 3))
    # B: case differs, so nothing matches except complete's lower-cased relation: P = R = 1/2
    assert report_reward(HYP_B, REF_B, "simple") == (0.0, 0.0, 0.0)
    assert report_reward(HYP_B, REF_B, "partial") == (0.0, 0.0, 0.0)
    assert report_reward(HYP_B, REF_B, "complete") == pytest.approx((1 / 2, 1 / 2, 1 / 2))
    # identical graphs score 1 up to the release's 1e-10 guards
    assert report_reward(REF_A, REF_A)[0] == pytest.approx(1.0, abs=1e-9)
    assert report_reward(REF_A, REF_A)[0] < 1.0
    assert report_reward(_ann(), REF_A) == report_reward(REF_A, _ann()) == (0.0, 0.0, 0.0)


def test_corpus_means_count_empty_reports_as_zero():
    got = radgraph_scores([HYP_A, HYP_B, _ann(), None], [REF_A, REF_B, REF_A, REF_A])
    # partial: (2/7, 1/4, 1/3), then three zero pairs
    assert got["f1"] == pytest.approx(2 / 7 / 4) and got["precision"] == pytest.approx(1 / 16)
    assert got["recall"] == pytest.approx(1 / 12) and got["per_report"].shape == (4, 3)
    assert radgraph_scores([HYP_B], [REF_B], level="complete")["f1"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="1 generated annotations but 2 references"):
        radgraph_scores([HYP_A], [REF_A, REF_B])
    with pytest.raises(ValueError, match="empty input"):
        radgraph_scores([], [])


# ---------------------------------------------------------------- the annotator

NER = ["", "ANAT-DP", "OBS-DP", "OBS-U", "OBS-DA"]  # index 0: the null label
RELATIONS = ["modify", "located_at", "suggestive_of"]
WORDS = ["heart", "size", "normal", "lungs", "clear", "no", "effusion", "left", "right", "none"]
H, F, HID = 16, 4, 8  # BERT width, width-embedding size, feed-forward width
# Non-BERT parameter names of the radgraph package's DyGIE model (read from a weights.th that
# radgraph 0.1.18 itself built); BERT's are "_embedder....transformer_model." + BertModel's.
PACKAGE_KEYS = {
    "_endpoint_span_extractor._span_width_embedding.weight",
    *(
        f"_ner._ner_scorers.radgraph__ner_labels.0._module._linear_layers.{i}.{p}"
        for i in (0, 1)
        for p in ("weight", "bias")
    ),
    "_ner._ner_scorers.radgraph__ner_labels.1._module.weight",
    "_ner._ner_scorers.radgraph__ner_labels.1._module.bias",
    *(
        f"_relation._mention_pruners.radgraph__relation_labels._scorer.0._module._linear_layers.{i}.{p}"
        for i in (0, 1)
        for p in ("weight", "bias")
    ),
    "_relation._mention_pruners.radgraph__relation_labels._scorer.1._module.weight",
    "_relation._mention_pruners.radgraph__relation_labels._scorer.1._module.bias",
    *(
        f"_relation._relation_feedforwards.radgraph__relation_labels._linear_layers.{i}.{p}"
        for i in (0, 1)
        for p in ("weight", "bias")
    ),
    "_relation._relation_scorers.radgraph__relation_labels.weight",
    "_relation._relation_scorers.radgraph__relation_labels.bias",
}
BERT_PREFIX = "_embedder.token_embedder_bert._matched_embedder.transformer_model."


def _bert_dir(root: Path) -> Path:
    out = root / "bert"
    out.mkdir()
    (out / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "(", ")", "/", *WORDS])
        + "\n"
    )
    BertTokenizer(vocab=str(out / "vocab.txt")).save_pretrained(out)
    BertConfig(
        vocab_size=20,
        hidden_size=H,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=64,
    ).save_pretrained(out)
    return out


def _config(bert: Path, max_length: int = 512, coref: float = 0.0) -> dict:
    bert_entry = {
        "type": "pretrained_transformer_mismatched",
        "max_length": max_length,
        "model_name": str(bert),
    }
    return {
        "dataset_reader": {
            "type": "dygie",
            "max_span_width": 3,
            "token_indexers": {"bert": bert_entry},
        },
        "model": {
            "type": "dygie",
            "embedder": {"token_embedders": {"bert": bert_entry}},
            "feature_size": F,
            "max_span_width": 3,
            "target_task": "relation",
            "feedforward_params": {"dropout": 0.4, "hidden_dims": HID, "num_layers": 2},
            "loss_weights": {"ner": 0.2, "relation": 1.0, "coref": coref, "events": 0.0},
            "modules": {
                "coref": {"spans_per_word": 0.3, "max_antecedents": 100, "coref_prop": 0},
                "ner": {},
                "relation": {"spans_per_word": 1.0},
                "events": {
                    "trigger_spans_per_word": 0.3,
                    "argument_spans_per_word": 0.8,
                    "loss_weights": {"trigger": 1.0, "arguments": 0.5},
                },
            },
        },
    }


def _net(bert: Path) -> SpanGraphNet:
    cfg = SpanGraphConfig("radgraph", 3, F, 2, HID, len(NER), len(RELATIONS), 1.0, 512)
    torch.manual_seed(0)
    return SpanGraphNet(cfg, BertConfig.from_pretrained(bert))


def _force(state: dict, relation_bias: float) -> dict:
    """Single words -> OBS-DP entities with mention score 5, longer spans -> null / 0; every
    kept pair -> "modify" (relation_bias > 0) or nothing (< 0). Width feature 0 is 1 for width 0."""
    state = {k: v.clone() for k, v in state.items()}
    width = torch.zeros(3, F)
    width[0, 0] = 1.0
    state["_endpoint_span_extractor._span_width_embedding.weight"] = width
    for head, out, value in (
        ("_ner._ner_scorers.radgraph__ner_labels.", 1, 10.0),
        ("_relation._mention_pruners.radgraph__relation_labels._scorer.", 0, 5.0),
    ):
        first, second = torch.zeros(HID, 2 * H + F), torch.eye(HID)
        first[0, 2 * H] = 1.0  # hidden unit 0 <- width feature 0
        state[f"{head}0._module._linear_layers.0.weight"] = first
        state[f"{head}0._module._linear_layers.1.weight"] = second
        for i in (0, 1):
            state[f"{head}0._module._linear_layers.{i}.bias"] = torch.zeros(HID)
        final = torch.zeros_like(state[f"{head}1._module.weight"])
        final[out, 0] = value  # NER output 1 = label 2 (OBS-DP); mention output 0
        state[f"{head}1._module.weight"] = final
        state[f"{head}1._module.bias"] = torch.zeros_like(state[f"{head}1._module.bias"])
    scorer = "_relation._relation_scorers.radgraph__relation_labels."
    state[f"{scorer}weight"] = torch.zeros(len(RELATIONS), HID)
    state[f"{scorer}bias"] = torch.tensor([relation_bias, -50.0, -50.0])
    return state


def _model_dir(root: Path, relation_bias: float = 10.0, **config) -> Path:
    """radgraph.tar.gz's layout: config.json, vocabulary/, weights.th (with the switched-off
    coref / events weights and an old transformers' position_ids buffer, as real files have)."""
    bert = root / "bert" if (root / "bert").is_dir() else _bert_dir(root)
    out = root / "radgraph"
    (out / "vocabulary").mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(_config(bert, **config)))
    (out / "vocabulary" / "non_padded_namespaces.txt").write_text("*tags\n*labels\n")
    (out / "vocabulary" / "radgraph__ner_labels.txt").write_text("\n".join(NER) + "\n")
    (out / "vocabulary" / "radgraph__relation_labels.txt").write_text("\n".join(RELATIONS) + "\n")
    state = _force(_net(bert).state_dict(), relation_bias)
    state["_coref._distance_embedding.weight"] = torch.zeros(10, F)
    state["_events._distance_embedding.weight"] = torch.zeros(10, F)
    state[f"{BERT_PREFIX}embeddings.position_ids"] = torch.arange(64)[None]
    torch.save(state, out / "weights.th")
    return out


def test_parameter_names_are_the_packages(tmp_path):
    keys = set(_net(_bert_dir(tmp_path)).state_dict())
    assert {k for k in keys if not k.startswith(BERT_PREFIX)} == PACKAGE_KEYS
    assert f"{BERT_PREFIX}pooler.dense.weight" in keys  # AutoModel's BertModel keeps its pooler


def test_split_words_follows_the_package():
    assert split_words("Heart size normal. Lungs clear, no effusion (left/right).") == [
        "Heart",
        "size",
        "normal",
        ".",
        "Lungs",
        "clear",
        ",",
        "no",
        "effusion",
        "(",
        "left",
        "/",
        "right",
        ")",
        ".",
    ]
    assert split_words("well-defined 2.5 cm") == ["well-defined", "2", ".", "5", "cm"]
    assert split_words("") == split_words("  ") == ["None"]


def test_forced_weights_give_the_expected_graph(tmp_path):
    annotator = RadGraphAnnotator(_model_dir(tmp_path), tmp_path / "bert")
    got = annotator(["heart size normal", "effusion"])
    every = [["modify", "1"], ["modify", "2"], ["modify", "3"]]
    assert got[0]["text"] == "heart size normal" and got[0]["data_split"] == "inference"
    assert got[0]["entities"] == {
        str(i + 1): {"tokens": w, "label": "OBS-DP", "start_ix": i, "end_ix": i, "relations": every}
        for i, w in enumerate(["heart", "size", "normal"])
    }
    assert got[1]["entities"]["1"]["relations"] == [["modify", "1"]]
    assert annotator([""])[0]["entities"]["1"]["tokens"] == "None"  # the package's stand-in
    # deterministic, and one report's graph does not depend on the others
    assert annotator(["effusion", "heart size normal"]) == got[::-1]
    # F1 end to end: the same report scores 1, a disjoint one 0
    scores = radgraph_scores(got, [got[0], got[0]])["per_report"][:, 0]
    assert scores == pytest.approx([1.0, 0.0], abs=1e-9)


def test_no_relation_when_the_scorer_says_none(tmp_path):
    annotator = RadGraphAnnotator(_model_dir(tmp_path, relation_bias=-50.0), tmp_path / "bert")
    entities = annotator(["lungs clear"])[0]["entities"]
    assert [e["tokens"] for e in entities.values()] == ["lungs", "clear"]
    assert all(e["relations"] == [] for e in entities.values())


def test_long_reports_are_folded_into_segments(tmp_path):
    annotator = RadGraphAnnotator(_model_dir(tmp_path, max_length=8), tmp_path / "bert")
    text = " ".join(WORDS * 3)  # 30 word pieces -> 5 segments of 6 pieces + [CLS] / [SEP]
    calls = []
    hook = annotator.net.bert.register_forward_hook(
        lambda m, a, k, o: calls.append(k["input_ids"]), with_kwargs=True
    )
    entities = annotator([text])[0]["entities"]
    hook.remove()
    assert calls[0].shape == (5, 8) and len(entities) == 30


def test_a_tar_gz_loads_like_its_folder_and_check_describes(tmp_path):
    folder = _model_dir(tmp_path)
    archive = tmp_path / "radgraph.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in folder.rglob("*"):
            tar.add(path, arcname=f"./{path.relative_to(folder)}", recursive=False)
    texts = ["heart size normal", "no effusion"]
    from_tar = RadGraphAnnotator(archive, tmp_path / "bert")(texts)
    assert from_tar == RadGraphAnnotator(folder, tmp_path / "bert")(texts)
    line = check_radgraph(archive, tmp_path / "bert")
    assert line.startswith(f"RadGraph: {archive}") and "4 entity labels, 3 relations" in line


def test_bad_setups_are_clear_errors(tmp_path):
    folder = _model_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"RadGraph model not found .* radgraph\.tar\.gz"):
        check_radgraph(tmp_path / "absent", tmp_path / "bert")
    with pytest.raises(FileNotFoundError, match=r"bert_dir must be a local copy"):
        check_radgraph(folder, tmp_path / "no_bert")
    (folder / "config.json").write_text(json.dumps(_config(tmp_path / "bert", coref=1.0)))
    with pytest.raises(ValueError, match=r"unsupported RadGraph config: \['coreference on'\]"):
        check_radgraph(folder, tmp_path / "bert")
    folder = _model_dir(tmp_path)
    state = torch.load(folder / "weights.th", weights_only=True)
    del state["_relation._relation_scorers.radgraph__relation_labels.bias"]
    state["_ner.extra"] = torch.zeros(1)
    torch.save(state, folder / "weights.th")
    with pytest.raises(
        ValueError, match=r"missing \['_relation.*bias'\], unexpected \['_ner.extra'\]"
    ):
        check_radgraph(folder, tmp_path / "bert")
    (folder / "vocabulary" / "radgraph__relation_labels.txt").write_text("modify\n")
    (folder / "weights.th").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"weights\.th is not a readable state dict"):
        check_radgraph(folder, tmp_path / "bert")
