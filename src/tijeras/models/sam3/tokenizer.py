"""The CLIP byte-pair tokenizer of SAM 3's text prompts (context length 32).

The BPE itself runs in Hugging Face's ``tokenizers`` library (a BPE model with CLIP's word
splitting, byte-level alphabet and ``</w>`` end-of-word suffix). Its vocabulary and merges are
built from CLIP's merge list ``bpe_simple_vocab_16e6.txt.gz`` the way CLIP numbers them (256
byte symbols, the same with ``</w>``, one entry per merge, then the start and end tokens: 49408
ids). That file is read from the installed ``open_clip_torch`` package, which tijeras depends on
for this file only (``open_clip`` itself is never imported), or from a ``bpe_path`` given.

Text is cleaned as CLIP does: mojibake fixed with ``ftfy`` when it is installed, HTML entities
unescaped, whitespace collapsed, lower case.

Shapes: B phrases, T = context length (32).
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from ...errors import PromptError, TijerasError

VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
START, END = "<|startoftext|>", "<|endoftext|>"
_MERGES = 49152 - 256 - 2  # merges CLIP uses from the file
_WORDS = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def default_vocab_path() -> Path:
    """CLIP's merge list as shipped in the installed ``open_clip_torch`` package."""
    spec = importlib.util.find_spec("open_clip")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / VOCAB_FILE
        if path.is_file():
            return path
    raise TijerasError(
        f"SAM 3's text prompts need CLIP's BPE vocabulary ({VOCAB_FILE}), which ships in the "
        "open_clip_torch package: pip install 'tijeras[sam3]' (or pass bpe_path=)"
    )


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible map from the 256 bytes to printable characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    codes = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, codes)}


@functools.lru_cache(maxsize=2)
def _build(path: str):
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE

    try:
        with gzip.open(path) as f:
            lines = f.read().decode("utf-8").split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TijerasError(f"cannot read the BPE vocabulary {path}: {exc}") from None
    merges = [tuple(line.split()) for line in lines[1 : _MERGES + 1]]
    if len(merges) != _MERGES or any(len(m) != 2 for m in merges):
        raise TijerasError(f"{path} is not CLIP's BPE merge list ({_MERGES} merges expected)")
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += [START, END]
    bpe = BPE(
        vocab={token: i for i, token in enumerate(vocab)},
        merges=merges,
        continuing_subword_prefix="",
        end_of_word_suffix="</w>",
        fuse_unk=False,
        unk_token=END,
    )
    tokenizer = Tokenizer(bpe)
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_WORDS), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    return tokenizer, len(vocab) - 2, len(vocab) - 1


def clean(text: str) -> str:
    """CLIP's text cleaning: ftfy (if installed), HTML entities twice, collapsed whitespace."""
    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:
        pass
    text = html.unescape(html.unescape(text))
    return re.sub(r"\s+", " ", text).strip()


class ClipTokenizer:
    """Noun phrases -> token ids for SAM 3's text encoder.

    Args:
        bpe_path: CLIP's ``bpe_simple_vocab_16e6.txt.gz``; default: the one in open_clip_torch.
        context_length: tokens per phrase, start and end tokens included.
    """

    def __init__(self, bpe_path: str | Path | None = None, context_length: int = 32) -> None:
        path = Path(bpe_path) if bpe_path is not None else default_vocab_path()
        self._tokenizer, self.start_id, self.end_id = _build(str(path))
        self.context_length = context_length

    def encode(self, phrase: str) -> list[int]:
        """One phrase -> its ids, start and end tokens included; a clear error when it is empty
        or longer than the context length."""
        if not isinstance(phrase, str):
            raise PromptError(f"a text prompt must be a string, got {type(phrase).__name__}")
        ids = self._tokenizer.encode(clean(phrase), add_special_tokens=False).ids
        limit = self.context_length
        if not ids:
            raise PromptError(
                f"empty text prompt {phrase!r}: give a noun phrase of 1 to {limit - 2} tokens "
                f"(the tokenizer's context length is {limit}, start and end tokens included)"
            )
        if len(ids) + 2 > limit:
            raise PromptError(
                f"text prompt {phrase[:60]!r} has {len(ids)} tokens; the tokenizer's context "
                f"length is {limit} (at most {limit - 2} tokens plus start and end): shorten it"
            )
        return [self.start_id, *ids, self.end_id]

    def __call__(self, phrases: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """B phrases -> ids B x T (padded with the end token) and valid flags B x T (bool)."""
        rows = [self.encode(p) for p in phrases]
        ids = torch.full((len(rows), self.context_length), self.end_id, dtype=torch.long)
        valid = torch.zeros((len(rows), self.context_length), dtype=torch.bool)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            valid[i, : len(row)] = True
        return ids, valid
