"""RadGraph annotator (Jain et al., 2021) from local weights: report text -> entities and
relations, for RadGraph F1 (:mod:`unixlib.eval.radgraph_f1`).

Our own implementation of the ``radgraph`` package's inference path (network in
:mod:`unixlib.eval.radgraph_net`). radgraph 0.1.18 (the UniX release's pin; requires torch>=2.1,
transformers>=4.39, appdirs, jsonpickle, filelock, h5py, nltk, dotmap, pytest) installs beside
torch 2.13 without moving it, but does not run beside transformers 5: its vendored AllenNLP calls
``tokenizer.encode_plus`` and ``AutoTokenizer.from_pretrained(name, add_special_tokens=False)``,
both gone in transformers 5. It also downloads ``radgraph.tar.gz`` from StanfordAIMI/RRG_scorers
when its cache is empty, and loads the transformer named in the archive's config from the hub.

**Weights.** ``model_path`` is ``radgraph.tar.gz`` (model type "radgraph", the one the release
scores with; StanfordAIMI/RRG_scorers) or the folder it extracts to: ``config.json`` (dygiepp
format), ``vocabulary/`` (AllenNLP label files ``radgraph__ner_labels.txt`` /
``radgraph__relation_labels.txt``) and ``weights.th`` (a state dict of the DyGIE model, BERT
included). ``bert_dir`` is a local copy of the BERT the config names (its ``config.json`` and
tokenizer files; the weights come from ``weights.th``). Loading is strict except for the
coreference and event modules, which the RadGraph config switches off (loss weight 0, no coref
propagation; checked) and whose weights are therefore unused, and two constant index buffers
(``position_ids`` / ``token_type_ids``) that older transformers saved.

**Conventions** (radgraph 0.1.18, model type "radgraph"): an empty text is annotated as "None"
(we do the same for whitespace-only text); the report is split into words by the package's
regex (a space before and after each of ``/ , : . ! ? ( )`` unless one is there, then
``str.split``); the words ``/.`` and ``/?`` reach the model as ``.`` and ``?``; the whole report
is one sentence; each word is word-pieced on its own, and its vector is the mean of its pieces.
The output per report is the package's annotation dict: ``{"text", "entities": {"1": {"tokens",
"label", "start_ix", "end_ix", "relations": [[label, object_id], ...]}, ...}, "data_source":
None, "data_split": "inference"}``; a predicted relation is kept only when both of its spans
are predicted entities. :func:`check_radgraph` validates the files without running (dry run).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, BertConfig

from unixlib.eval.radgraph_net import SpanGraphConfig, SpanGraphNet

# The package's word split for model type "radgraph" (radgraph/utils.py). In its character class
# ",-," is the range from "," to ",", so the class is / , : . ! ? ( ) (no hyphen).
_SPLIT = re.compile(r"(?<! )(?=[/,-,:,.,!?()])|(?<=[/,-,:,.,!?()])(?! )")
_UNUSED = ("_coref.", "_events.")  # modules the RadGraph config switches off
_IGNORABLE = ("embeddings.position_ids", "embeddings.token_type_ids")
_EXPECTED = (
    "radgraph.tar.gz (StanfordAIMI/RRG_scorers) or its folder: config.json, vocabulary/, weights.th"
)


def split_words(report: str) -> list[str]:
    """The words the annotator sees; an empty (or blank) report is the word "None"."""
    return _SPLIT.sub(" ", report if report.strip() else "None").split()


def _model_files(path: Path) -> dict[str, bytes]:
    """config.json, vocabulary/*.txt and weights.th as bytes, from the folder or the archive."""
    if path.is_dir():
        files = {p.relative_to(path).as_posix(): p for p in path.rglob("*") if p.is_file()}
        wanted = {k: v for k, v in files.items() if k.endswith((".json", ".txt", ".th"))}
        return {k: v.read_bytes() for k, v in wanted.items()}
    if path.is_file() and tarfile.is_tarfile(path):
        out = {}
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                name = member.name.removeprefix("./")
                if member.isfile() and name.endswith((".json", ".txt", ".th")):
                    out[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
        return out
    raise FileNotFoundError(f"RadGraph model not found at {path}; expected {_EXPECTED}")


def _labels(files: dict[str, bytes], namespace: str) -> list[str]:
    """An AllenNLP label file as a list (index = line); label namespaces are not padded."""
    name = f"vocabulary/{namespace}.txt"
    if name not in files:
        raise ValueError(f"RadGraph vocabulary lacks {name}")
    lines = re.split(r"\r?\n", files[name].decode("utf-8"))
    return lines[:-1] if lines and lines[-1] == "" else lines


def _dataset(files: dict[str, bytes]) -> str:
    """The label namespace prefix, from the one ``*__ner_labels.txt`` file."""
    found = [k for k in files if k.startswith("vocabulary/") and k.endswith("__ner_labels.txt")]
    if len(found) != 1:
        raise ValueError(f"expected one vocabulary/*__ner_labels.txt, found {found}")
    return found[0].removeprefix("vocabulary/").removesuffix("__ner_labels.txt")


def _span_config(files: dict[str, bytes]) -> tuple[SpanGraphConfig, dict[str, Any]]:
    """The network's shape from config.json, after checking it is a model we implement."""
    if "config.json" not in files or "weights.th" not in files:
        raise FileNotFoundError(
            f"RadGraph model lacks config.json or weights.th; expected {_EXPECTED}"
        )
    model = json.loads(files["config.json"])["model"]
    weights, modules, bert = model["loss_weights"], model["modules"], model["embedder"]
    bert = bert["token_embedders"]["bert"]
    unsupported = {
        "ner loss weight 0": weights.get("ner", 0) <= 0,
        "coreference on": weights.get("coref", 0) > 0 or modules["coref"].get("coref_prop", 0) > 0,
        "events on": weights.get("events", 0) > 0,
        "scalar mix of layers": bert.get("last_layer_only", True) is False,
    }
    if any(unsupported.values()):
        raise ValueError(f"unsupported RadGraph config: {[k for k, v in unsupported.items() if v]}")
    dataset = _dataset(files)
    cfg = SpanGraphConfig(
        dataset=dataset,
        max_span_width=int(model["max_span_width"]),
        feature_size=int(model["feature_size"]),
        ff_layers=int(model["feedforward_params"]["num_layers"]),
        ff_hidden=int(model["feedforward_params"]["hidden_dims"]),
        n_ner_labels=len(_labels(files, f"{dataset}__ner_labels")),
        n_relation_labels=len(_labels(files, f"{dataset}__relation_labels")),
        spans_per_word=float(modules["relation"]["spans_per_word"]),
        max_length=int(bert.get("max_length") or 512),
    )
    return cfg, {"relations": weights.get("relation", 0) > 0, "bert_name": bert["model_name"]}


def _state(files: dict[str, bytes], net: SpanGraphNet, source: Path) -> dict[str, torch.Tensor]:
    """weights.th without the switched-off modules; any other mismatch is a ValueError."""
    try:
        state = torch.load(io.BytesIO(files["weights.th"]), map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors of several types
        raise ValueError(f"{source}: weights.th is not a readable state dict: {err}") from err
    state = {
        k: v for k, v in state.items() if not k.startswith(_UNUSED) and not k.endswith(_IGNORABLE)
    }
    expected = net.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    bad = [k for k in set(expected) & set(state) if state[k].shape != expected[k].shape]
    if missing or unexpected or bad:
        raise ValueError(
            f"{source}: weights.th does not match its config / bert_dir: missing {missing}, "
            f"unexpected {unexpected}, wrong shape {sorted(bad)}"
        )
    return state


def _build(model_path: Path, bert_dir: Path, meta: bool) -> tuple[SpanGraphNet, dict[str, Any]]:
    """The network (on the meta device when only checking) with its weights and label lists."""
    if not (bert_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{bert_dir / 'config.json'} not found: bert_dir must be a local copy of the BERT "
            "that the RadGraph config names (config.json + vocab.txt or tokenizer.json)"
        )
    files = _model_files(model_path)
    cfg, info = _span_config(files)
    # Built for real when it will run: to_empty() after meta would leave BERT's non-persistent
    # buffers (position ids) uninitialised.
    with torch.device("meta" if meta else "cpu"):
        net = SpanGraphNet(cfg, BertConfig.from_pretrained(bert_dir, local_files_only=True))
    info |= {
        "state": _state(files, net, model_path),
        "ner": _labels(files, f"{cfg.dataset}__ner_labels"),
        "relation": _labels(files, f"{cfg.dataset}__relation_labels"),
    }
    if info["ner"][:1] != [""]:
        raise ValueError(f"{model_path}: the NER labels must start with the null label ''")
    return net, info


def _to_annotation(
    words: list[str], entities: list[tuple[int, int, str]], relations: list[tuple]
) -> dict[str, Any]:
    """The package's annotation dict (``postprocess_reports`` / ``get_entity``)."""
    ids = {(s, e): str(i + 1) for i, (s, e, _) in reversed(list(enumerate(entities)))}
    out = {}
    for i, (start, end, label) in enumerate(entities):
        rels = [
            [lab, ids[obj]] for subj, obj, lab in relations if subj == (start, end) and obj in ids
        ]
        out[str(i + 1)] = {
            "tokens": " ".join(words[start : end + 1]),
            "label": label,
            "start_ix": start,
            "end_ix": end,
            "relations": rels,
        }
    return {
        "text": " ".join(words),
        "entities": out,
        "data_source": None,
        "data_split": "inference",
    }


class RadGraphAnnotator:
    """Callable ``texts -> list of annotation dicts`` (see the module docstring)."""

    def __init__(self, model_path: str | Path, bert_dir: str | Path, device: str = "cpu") -> None:
        self.model_path, bert_dir = Path(model_path), Path(bert_dir)
        self.net, info = _build(self.model_path, bert_dir, meta=False)
        self.net.load_state_dict(info["state"], strict=True)
        self.net.to(device).eval()
        self.ner_labels, self.relation_labels = info["ner"], info["relation"]
        self.with_relations = info["relations"]
        self.tokenizer = AutoTokenizer.from_pretrained(bert_dir, local_files_only=True)

    @torch.no_grad()
    def annotate(self, text: str) -> dict[str, Any]:
        """One report's annotation."""
        words = split_words(text)
        model_words = [w[1:] if w in ("/.", "/?") else w for w in words]  # DyGIE's normalisation
        pieces = self.tokenizer(model_words, add_special_tokens=False)["input_ids"]
        tok = self.tokenizer
        span_vecs = self.net.span_vectors(
            self.net.word_vectors(pieces, tok.cls_token_id, tok.sep_token_id),
            spans := self.net.spans(len(words)).to(self.net.bert.device),
        )  # (S, 2H + F)
        labels = self.net.ner(span_vecs).tolist()
        span_list = [tuple(s) for s in spans.tolist()]
        entities = [(*s, self.ner_labels[i]) for s, i in zip(span_list, labels, strict=True) if i]
        relations = []
        if self.with_relations:
            top, rel = self.net.relations(span_vecs, len(words))
            kept = [span_list[i] for i in top.tolist()]
            for a, b in (rel >= 0).nonzero().tolist():
                relations.append((kept[a], kept[b], self.relation_labels[rel[a, b]]))
        return _to_annotation(words, entities, relations)

    def __call__(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        return [self.annotate(t) for t in texts]


def check_radgraph(model_path: str | Path, bert_dir: str | Path) -> str:
    """Validate a RadGraph setup without running it; a one-line description, or a clear error
    (files, config supported, weights.th names and shapes against the config and bert_dir)."""
    _, info = _build(Path(model_path), Path(bert_dir), meta=True)
    return (
        f"RadGraph: {model_path} (BERT config from {bert_dir}, config names {info['bert_name']}; "
        f"{len(info['ner']) - 1} entity labels, {len(info['relation'])} relations; F1 partial)"
    )
