"""Report tokenizers: a byte-level BPE trained here, or Janus-Pro's from its local directory.

Both are exposed as :class:`ReportTokenizer`, which knows the five special ids the model's
sequence plans use (bos, eos, pad, start-of-image, end-of-image). The BPE is trained in notebook
01 on the training split's cleaned reports and saved beside the processed data, so every later
notebook loads the same vocabulary from there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

# The tokenizers library batches on a Rayon thread pool whose workers spin while they wait for
# work; a training step tokenizes between model ops, and on a two-core CPU those spinning workers
# take the cores from PyTorch's OpenMP threads: a bf16 smoke step inside a notebook ran at 0.22 s
# instead of 0.15 s (stage 3), until parallelism was off. Encoding is not the bottleneck at any
# scale here (reports are cached as ids once per dataset), so it is off unless the user sets it.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Our BPE's special tokens, in id order (ids 0..4).
SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|boi|>", "<|eoi|>")
SPECIALS_FILE = "special_tokens.json"

# Janus-Pro / DeepSeek-LLM ids (PAPER.md, Architecture). Its tokenizer has no pad token; the
# model never attends to padding, so eos doubles as pad.
JANUS_VOCAB_SIZE = 102400  # rows of Janus-Pro's embedding table (the paper preset's vocab_size)
JANUS_SPECIAL_IDS = {"bos": 100000, "eos": 100001, "pad": 100001, "boi": 100003, "eoi": 100580}


@dataclass
class ReportTokenizer:
    """Text <-> ids for reports and prompts. ``encode`` adds no special tokens."""

    tokenizer: Tokenizer
    bos: int
    eos: int
    pad: int
    boi: int
    eoi: int
    # Rows of the model's embedding table when it has more than the tokenizer file has entries
    # (Janus-Pro: 102,400 rows, ~100.6k tokenizer entries, specials up to 100,580); 0 = none.
    embedding_rows: int = 0
    # (add_bos, add_eos) of a transformers tokenizer_config.json (Janus-Pro's LlamaTokenizerFast):
    # how the official code's ``tokenizer.encode`` frames a text. None: the tokenizer file's own
    # post-processor decides (our BPE has none). See :meth:`encode_official`.
    official_framing: tuple[bool, bool] | None = None

    @property
    def vocab_size(self) -> int:
        """Rows the model's embedding table needs: the tokenizer's entries, or the pretrained
        embedding's row count when that is larger (saved with the tokenizer, kept on reload)."""
        return max(self.tokenizer.get_vocab_size(with_added_tokens=True), self.embedding_rows)

    @property
    def special_ids(self) -> dict[str, int]:
        return {"bos": self.bos, "eos": self.eos, "pad": self.pad, "boi": self.boi, "eoi": self.eoi}

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def encode_official(self, text: str) -> list[int]:
        """Ids as the official UniX inference encodes a prompt (``tokenizer.encode(text)``).

        The release loads Janus-Pro's tokenizer as a transformers ``LlamaTokenizerFast``
        (transformers 4.49), whose constructor *replaces* the post-processor stored in
        ``tokenizer.json`` by one built from ``add_bos_token`` / ``add_eos_token`` of
        ``tokenizer_config.json``: ``[bos] + ids + [eos]``, each end only when its flag is set.
        So with ``official_framing`` (read from that file) the text is framed that way whatever
        ``tokenizer.json`` says; without it (our BPE, or a directory with no
        ``tokenizer_config.json``) the tokenizer file's own post-processor applies.
        """
        if self.official_framing is None:
            return self.tokenizer.encode(text, add_special_tokens=True).ids
        add_bos, add_eos = self.official_framing
        return [self.bos] * add_bos + self.encode(text) + [self.eos] * add_eos

    def decode(self, ids: Iterable[int]) -> str:
        """Decode, dropping special ids and stopping at the first eos."""
        out: list[int] = []
        specials = set(self.special_ids.values())
        for i in ids:
            if i == self.eos:
                break
            if i not in specials:
                out.append(int(i))
        return self.tokenizer.decode(out).strip()

    def save(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(out_dir / "tokenizer.json"))
        specials = {**self.special_ids, "embedding_rows": self.embedding_rows}
        if self.official_framing is not None:
            specials["official_framing"] = list(self.official_framing)
        (out_dir / SPECIALS_FILE).write_text(json.dumps(specials, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ReportTokenizer:
        """Load a directory with ``tokenizer.json``: ours (with ``special_tokens.json``), or a
        Janus-Pro checkpoint directory (special ids from the paper)."""
        path = Path(path)
        tok_file = path / "tokenizer.json"
        if not tok_file.is_file():
            raise FileNotFoundError(
                f"no tokenizer.json in {path} (train one in notebook 01, "
                "or point the profile at a Janus-Pro directory)"
            )
        tokenizer = Tokenizer.from_file(str(tok_file))
        specials_file = path / SPECIALS_FILE
        ids = (
            json.loads(specials_file.read_text()) if specials_file.is_file() else JANUS_SPECIAL_IDS
        )
        # Janus-Pro (no specials file): its ids index the model's 102,400 rows, beyond the
        # tokenizer file's own entries. A re-saved tokenizer keeps the allowance it was given.
        rows = int(ids.get("embedding_rows", 0)) if specials_file.is_file() else JANUS_VOCAB_SIZE
        framing = ids.get("official_framing") if specials_file.is_file() else _framing(path)
        tok = cls(
            tokenizer,
            **{k: int(ids[k]) for k in ("bos", "eos", "pad", "boi", "eoi")},
            embedding_rows=rows,
            official_framing=None if framing is None else (bool(framing[0]), bool(framing[1])),
        )
        if framing is not None:
            _check_framing_tokens(path, tokenizer, tok)
        bad = {k: v for k, v in tok.special_ids.items() if not 0 <= v < tok.vocab_size}
        if bad:
            raise ValueError(
                f"{path}: special ids {bad} fall outside the vocabulary ({tok.vocab_size})"
            )
        return tok


# LlamaTokenizerFast's defaults when tokenizer_config.json leaves a flag out (transformers 4.49).
_LLAMA_FRAMING_DEFAULTS = {"add_bos_token": True, "add_eos_token": False}


def _framing(path: Path) -> tuple[bool, bool] | None:
    """(add_bos, add_eos) from a Janus-Pro directory's ``tokenizer_config.json``; None if absent."""
    cfg_file = path / "tokenizer_config.json"
    if not cfg_file.is_file():
        return None
    cfg = json.loads(cfg_file.read_text())
    flags = {k: cfg.get(k, default) for k, default in _LLAMA_FRAMING_DEFAULTS.items()}
    return bool(flags["add_bos_token"]), bool(flags["add_eos_token"])


def _token_content(entry: object) -> str | None:
    """A tokenizer_config.json token entry: a string or an AddedToken dict with ``content``."""
    return entry.get("content") if isinstance(entry, dict) else entry  # type: ignore[return-value]


def _check_framing_tokens(path: Path, tokenizer: Tokenizer, tok: ReportTokenizer) -> None:
    """The bos / eos that transformers would add are the ids the model's plans use: a tokenizer
    whose ``bos_token`` maps elsewhere would silently shift every position."""
    cfg_file = path / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
    add_bos, add_eos = tok.official_framing or (False, False)
    for name, expected, added in (("bos_token", tok.bos, add_bos), ("eos_token", tok.eos, add_eos)):
        content = _token_content(cfg.get(name)) if added else None
        got = tokenizer.token_to_id(content) if content else None
        if content and got != expected:
            raise ValueError(
                f"{cfg_file}: {name} {content!r} has id {got} in tokenizer.json, but the model "
                f"uses {expected} (special ids {tok.special_ids})"
            )


def train_bpe(
    texts: Iterable[str], vocab_size: int, out_dir: Path | None = None
) -> ReportTokenizer:
    """Train a byte-level BPE on ``texts`` (deterministic for the same texts in the same order).

    Byte-level means no unknown tokens: any report, including ones with characters unseen in
    training, round-trips through encode/decode.
    """
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("cannot train a tokenizer on zero non-empty texts")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    ids = {
        name: tokenizer.token_to_id(tok)
        for name, tok in zip(("pad", "bos", "eos", "boi", "eoi"), SPECIAL_TOKENS, strict=True)
    }
    result = ReportTokenizer(tokenizer, **ids)
    if out_dir is not None:
        result.save(out_dir)
    return result
