"""The ``embed`` step of ``embed.exo``: sentence embeddings of synthetic texts, one shard.

A BERT-base-shaped encoder (``BertModel(BertConfig())``: 12 layers, 768 wide,
about 110 M parameters) with random weights from a fixed seed, so nothing is
downloaded; bf16 on a GPU. Texts are synthetic token ids, a pure function of
the item's index (the same item gets the same tokens whatever the batch), of
varied lengths up to ``--seq-len``. Each item's embedding is the masked mean of
the last hidden states, L2-normalised, written as 768 float16 values.

Written with the worker helper (docs/resumable-commands.md): the model is built
once per shard (its startup, with one warm-up batch so that the kernels are
chosen before the first micro-batch is timed), then every pending micro-batch
is embedded and committed; the shard's output is ``embeddings.f16``, the items'
vectors in item order.

``EXO_GPU_BENCH_TINY=1`` swaps in a 2-layer, 64-wide encoder so that the whole
benchmark can be rehearsed on a CPU in a minute or two (device.sh sets it
with ``--tiny``); the figures it gives say nothing about a GPU.

Run alone (outside exo)::

    EXO_CHECKPOINT=ckpt EXO_BATCH_START=0 EXO_BATCH_END=4096 EXO_BATCH_SIZE=256 \\
        EXO_OUTPUT=out python3 embed.py --seq-len 128
"""

from __future__ import annotations

import argparse
import os

import torch
from transformers import BertConfig, BertModel

from exo.worker import shard

#: Token ids below this are BERT's special and unused ones; synthetic words avoid them.
FIRST_WORD = 1000
CLS, SEP = 101, 102


def config(tiny: bool) -> BertConfig:
    if tiny:
        return BertConfig(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
        )
    return BertConfig()  # bert-base: 12 layers, hidden 768, 12 heads, vocabulary 30522


def tokens(
    start: int, end: int, seq_len: int, vocab: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and attention mask of items ``[start, end)``: a function of the index only."""
    i = torch.arange(start, end, device=device, dtype=torch.int64)[:, None]
    j = torch.arange(seq_len, device=device, dtype=torch.int64)[None, :]
    words = FIRST_WORD + (i * 1_000_003 + j * 7_919 + (i * j) % 8_191) % (vocab - FIRST_WORD)
    length = 16 + (i * 2_654_435_761) % (seq_len - 15)  # 16 .. seq_len tokens
    mask = j < length
    ids = torch.where(mask, words, torch.zeros_like(words))
    ids[:, 0] = CLS
    ids.scatter_(1, length - 1, SEP)
    return ids, mask.to(torch.int64)


def embed(model: BertModel, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).float()
    pooled = (hidden.float() * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).to(torch.float16).cpu()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seq-len", type=int, default=128)
    args = ap.parse_args()
    tiny = os.environ.get("EXO_GPU_BENCH_TINY", "") not in ("", "0")

    s = shard()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    cfg = config(tiny)
    with device:
        model = BertModel(cfg, add_pooling_layer=False).eval()
    if device.type == "cuda":
        model = model.to(torch.bfloat16)  # a CPU stays in float32: bf16 is slow on most
    warm = min(s.batch_size or 1, 1024)
    embed(model, *tokens(0, warm, args.seq_len, cfg.vocab_size, device))
    if device.type == "cuda":
        torch.cuda.synchronize()

    for batch in s:
        ids, mask = tokens(batch.start, batch.end, args.seq_len, cfg.vocab_size, device)
        vectors = embed(model, ids, mask)
        batch.commit({"embeddings.f16": vectors.numpy().tobytes()})
    s.assemble()


if __name__ == "__main__":
    main()
