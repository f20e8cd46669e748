"""A cross-encoder trained here, for the rerank stage and as a judge of the first passage
(issue 31: a judge that reads question and passage together; issue 33: the rerank stage with
a real local model). No reranker is packaged on this machine, so one is trained from
all-MiniLM-L6-v2's weights with a new scoring head.

Fit side only: questions of SQuAD v1.1 dev's tune half (`bench.eval_split --half tune
--squad`), each searched as served on the SQuAD index; the best-ranked passage holding a gold
answer is a positive and the best-ranked passages holding none are negatives, what a reranker
meets in service. Listwise loss (a softmax over each question's passages): binary
cross-entropy over the same pairs collapsed to the base rate in one epoch (every score near
0.24, AUC 0.60 on its own training pairs). Nothing from the sample articles or the reported
sets is used.

    python -m bench.experiments.train_reranker --squad-index IDX --out FOLDER
    QA_RERANK=FOLDER qa-eval SET --index IDX          # then judge it where nothing was fitted

Outcome (docs/history/reranker-training-2026-12-07.md): it matches the hybrid on SQuAD's report
half and ranks the sample's reported sets worse; not kept as a model.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

from bench.eval_split import squad_halves

NEGATIVES = 3  # per question
DEPTH = 10  # passages searched per question for its positive and negatives


def training_groups(searcher, rows: list[dict], depth: int = DEPTH, negatives: int = NEGATIVES):
    """(question, [the passage that answers, then `negatives` that do not]) from searching
    `rows` as served; a question whose first `depth` passages hold no gold answer, or that has
    too few that do not, gives none."""
    from index.evaluate import parse_eval_set, passage_answers
    from index.rerank import passage_text

    eval_set = parse_eval_set((json.dumps(row) for row in rows), "fit")
    groups = []
    for question in eval_set.questions:
        passages = searcher.search(question.question, top_k=depth).passages
        right = [passage_answers(question, p) for p in passages]
        text = [passage_text(p.article.title, p.chunk.speaker, p.chunk.text) for p in passages]
        wrong = [t for t, r in zip(text, right) if not r][:negatives]
        if True in right and len(wrong) == negatives:
            groups.append((question.question, [text[right.index(True)], *wrong]))
    return groups


def train(groups, base: str, out: Path, epochs: int, batch: int, lr: float, max_length: int) -> None:
    """Fine-tune `base` as a one-score cross-encoder on `groups` (listwise: a softmax over each
    group's scores, the answering passage the target; `batch` groups a step) and save it."""
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(base, num_labels=1, max_length=max_length, device="cpu")
    net, tokenizer = model.model, model.tokenizer
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * math.ceil(len(groups) / batch)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup))))
    size = len(groups[0][1])
    order, rng, started, done = list(range(len(groups))), random.Random(0), time.perf_counter(), 0
    net.train()
    for epoch in range(epochs):
        rng.shuffle(order)
        for at in range(0, len(order), batch):
            chosen = [groups[i] for i in order[at:at + batch]]
            encoded = tokenizer([q for q, texts in chosen for _ in texts], [t for _, texts in chosen for t in texts],
                                truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            scores = net(**encoded).logits[:, 0].view(len(chosen), size)
            loss = torch.nn.functional.cross_entropy(scores, torch.zeros(len(chosen), dtype=torch.long))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step(), schedule.step(), optimiser.zero_grad()
            done += 1
            if done % 20 == 0 or done == steps:
                rate = done * batch * size / (time.perf_counter() - started)
                print(f"epoch {epoch + 1} step {done}/{steps} loss {loss.item():.3f} ({rate:.1f} pairs/s)",
                      flush=True)
    net.eval()
    model.save(str(out))


def main(argv: list[str] | None = None) -> int:
    from index.cli import open_searcher
    from index.confidence import CalibrationChoice
    from index.encoder import DEFAULT_MODEL, resolve_model_path

    parser = argparse.ArgumentParser(prog="python -m bench.experiments.train_reranker",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad-index", type=Path, required=True, help="qa-ingest of SQuAD dev's articles")
    parser.add_argument("--out", type=Path, required=True, help="folder to save the cross-encoder in")
    parser.add_argument("--questions", type=int, default=2000, help="of the tune half, seeded (0: all)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4, help="groups a step")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=192)
    args = parser.parse_args(argv)

    rows = squad_halves()["tune"]
    if args.questions:
        rows = random.Random(33).sample(rows, min(args.questions, len(rows)))
    searcher = open_searcher(args.squad_index, CalibrationChoice(None, "training a reranker"))
    started = time.perf_counter()
    groups = training_groups(searcher, rows)
    print(f"{len(rows)} fit questions: {len(groups)} with a passage that answers and {NEGATIVES} that do "
          f"not in the first {DEPTH} ({time.perf_counter() - started:.0f} s)", flush=True)
    if not groups:
        print("no question to train on: is the index SQuAD dev's articles?", file=sys.stderr)
        return 1
    train(groups, resolve_model_path(DEFAULT_MODEL), args.out, args.epochs, args.batch, args.lr, args.max_length)
    print(f"cross-encoder saved to {args.out}; use it with QA_RERANK={args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
