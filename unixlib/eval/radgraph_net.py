"""The RadGraph annotator's network: DyGIE++ (Wadden et al., 2019) entity and relation heads on
BERT, for inference, with the parameter names of the ``radgraph`` package's ``weights.th``.

Our implementation of the inference path of ``radgraph.dygie.models`` (``dygie.py``, ``ner.py``,
``relation.py``, ``entity_beam_pruner.py``) and the AllenNLP modules it uses
(``PretrainedTransformerMismatchedEmbedder``, ``EndpointSpanExtractor``, ``FeedForward``,
``TimeDistributed``): the package itself cannot run beside transformers 5 (see
:mod:`unixlib.eval.radgraph`). For one report of n words::

    wordpieces [CLS] p.. [SEP] -> BERT (last layer)           (P, H)
    word j = mean of its pieces' vectors (0 if none)          (n, H)
    span (i, j), j - i < W, ordered by i then j:              (S, 2H + F)
        [word_i, word_j, width_embedding(j - i)]
    NER: FF -> Linear(L_ner - 1), a 0 prepended for the null label, argmax
    relations: mention score FF -> Linear(1) on every span; the k = ceil(n * spans_per_word)
        best spans (then in span order); for each ordered pair (a, b) of them
        FF([s_a, s_b, s_a * s_b]) -> Linear(L_rel) + mention_a + mention_b, a 0 prepended for
        "no relation", argmax

``FF`` is AllenNLP's ``FeedForward``: ``num_layers`` x (Linear -> ReLU -> Dropout), dropout off
at inference. Sentences longer than the transformer's ``max_length`` word pieces are folded into
segments of ``max_length - 2`` pieces, each wrapped in [CLS] / [SEP], as AllenNLP does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import BertConfig, BertModel


@dataclass(frozen=True)
class SpanGraphConfig:
    """The shape of a RadGraph model, from its ``config.json`` (dygiepp format)."""

    dataset: str  # label namespaces are "<dataset>__ner_labels" / "<dataset>__relation_labels"
    max_span_width: int
    feature_size: int  # width embedding size
    ff_layers: int
    ff_hidden: int
    n_ner_labels: int  # including the null label "" at index 0
    n_relation_labels: int  # excluding "no relation" (scored 0 implicitly)
    spans_per_word: float
    max_length: int  # word pieces per transformer segment


class _FeedForward(nn.Module):
    """AllenNLP FeedForward at inference: (Linear -> ReLU) x layers; keys ``_linear_layers.i``."""

    def __init__(self, input_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden] * layers
        self._linear_layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self._linear_layers:
            x = torch.relu(layer(x))
        return x


class _TimeDistributed(nn.Module):
    """AllenNLP's TimeDistributed: only its ``_module`` key prefix matters here."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self._module = module

    def forward(self, x: Tensor) -> Tensor:
        return self._module(x)


def _scorer(ff: _FeedForward, hidden: int, out: int) -> nn.Sequential:
    """Sequential(TimeDistributed(ff), TimeDistributed(Linear)): keys ``0._module``/``1._module``."""
    return nn.Sequential(_TimeDistributed(ff), _TimeDistributed(nn.Linear(hidden, out)))


class SpanGraphNet(nn.Module):
    """BERT + span extractor + NER and relation heads (DyGIE's parameter names)."""

    def __init__(self, cfg: SpanGraphConfig, bert: BertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h, f, ff = bert.hidden_size, cfg.feature_size, (cfg.ff_hidden, cfg.ff_layers)
        span_dim = 2 * h + f  # combination "x,y" + width embedding
        ner_ns, rel_ns = f"{cfg.dataset}__ner_labels", f"{cfg.dataset}__relation_labels"
        embedder = nn.Module()  # _embedder.token_embedder_bert._matched_embedder.transformer_model
        embedder.token_embedder_bert = nn.Module()
        embedder.token_embedder_bert._matched_embedder = nn.Module()
        embedder.token_embedder_bert._matched_embedder.transformer_model = BertModel(bert)
        self._embedder = embedder
        self._endpoint_span_extractor = nn.Module()
        self._endpoint_span_extractor._span_width_embedding = nn.Embedding(cfg.max_span_width, f)
        self._ner = nn.Module()
        ner_ff = _FeedForward(span_dim, *ff)
        self._ner._ner_scorers = nn.ModuleDict(
            {ner_ns: _scorer(ner_ff, cfg.ff_hidden, cfg.n_ner_labels - 1)}
        )
        self._relation = nn.Module()
        pruner = nn.Module()
        pruner._scorer = _scorer(_FeedForward(span_dim, *ff), cfg.ff_hidden, 1)
        self._relation._mention_pruners = nn.ModuleDict({rel_ns: pruner})
        self._relation._relation_feedforwards = nn.ModuleDict(
            {rel_ns: _FeedForward(3 * span_dim, *ff)}
        )
        self._relation._relation_scorers = nn.ModuleDict(
            {rel_ns: nn.Linear(cfg.ff_hidden, cfg.n_relation_labels)}
        )
        self.ner_ns, self.rel_ns = ner_ns, rel_ns

    @property
    def bert(self) -> BertModel:
        return self._embedder.token_embedder_bert._matched_embedder.transformer_model

    def word_vectors(self, pieces: list[list[int]], cls: int, sep: int) -> Tensor:
        """(n, H): each word's mean word-piece vector from the last BERT layer (0 if none)."""
        flat = [p for word in pieces for p in word]  # (P,) without specials
        step = self.cfg.max_length - 2
        segments = [flat[i : i + step] for i in range(0, max(len(flat), 1), step)]
        ids = torch.zeros(len(segments), min(len(flat), step) + 2, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seg in enumerate(segments):
            ids[row, : len(seg) + 2] = torch.tensor([cls, *seg, sep])
            mask[row, : len(seg) + 2] = 1
        device = self._endpoint_span_extractor._span_width_embedding.weight.device
        hidden = self.bert(input_ids=ids.to(device), attention_mask=mask.to(device))[0]
        content = torch.cat([hidden[r, 1 : len(s) + 1] for r, s in enumerate(segments)])  # (P, H)
        out = content.new_zeros(len(pieces), content.shape[-1])
        start = 0
        for j, word in enumerate(pieces):
            if word:
                out[j] = content[start : start + len(word)].mean(dim=0)
            start += len(word)
        return out

    def spans(self, n: int) -> Tensor:
        """(S, 2) inclusive (start, end) of every span of at most ``max_span_width`` words."""
        w = self.cfg.max_span_width
        return torch.tensor([(i, j) for i in range(n) for j in range(i, min(i + w, n))])

    def span_vectors(self, words: Tensor, spans: Tensor) -> Tensor:
        """(S, 2H + F): [start word, end word, width embedding]."""
        width = self._endpoint_span_extractor._span_width_embedding(spans[:, 1] - spans[:, 0])
        return torch.cat([words[spans[:, 0]], words[spans[:, 1]], width], dim=-1)

    def ner(self, span_vecs: Tensor) -> Tensor:
        """(S,) label index per span; 0 is the null label."""
        scores = self._ner._ner_scorers[self.ner_ns](span_vecs)  # (S, L - 1)
        return torch.cat([scores.new_zeros(len(scores), 1), scores], dim=-1).argmax(dim=-1)

    def relations(self, span_vecs: Tensor, n_words: int) -> tuple[Tensor, Tensor]:
        """(k,) indices of the kept spans (ascending) and (k, k) relation index per ordered pair,
        -1 for "no relation"."""
        mention = self._relation._mention_pruners[self.rel_ns]._scorer(span_vecs)[:, 0]  # (S,)
        # float32 product, as the package's ceil(sentence_lengths.float() * spans_per_word)
        k = int(torch.ceil(torch.tensor(float(n_words)) * self.cfg.spans_per_word))
        k = min(max(k, 1), len(mention))  # the package keeps >= 1 (and would fail beyond S)
        top = torch.sort(mention.topk(k).indices).values  # (k,)
        s, m = span_vecs[top], mention[top]  # (k, D), (k,)
        a, b = s[:, None].expand(-1, k, -1), s[None].expand(k, -1, -1)
        pairs = torch.cat([a, b, a * b], dim=-1)  # (k, k, 3D)
        scores = self._relation._relation_scorers[self.rel_ns](
            self._relation._relation_feedforwards[self.rel_ns](pairs)
        )  # (k, k, L_rel)
        scores = scores + m[:, None, None] + m[None, :, None]
        scores = torch.cat([scores.new_zeros(k, k, 1), scores], dim=-1)
        return top, scores.argmax(dim=-1) - 1
