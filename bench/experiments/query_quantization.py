"""An int8 copy of the question encoder (issue 17): how much faster, and how far its vectors
move from the served float32 ones.

The served query model (`index.query_model.OnnxQueryModel`) is exported as `qa-serve` exports it,
then quantised with ONNX Runtime's dynamic quantisation in three ways: every MatMul and Gemm
per tensor, the same per output channel, and only the feed-forward MatMuls per channel. Each
copy embeds the same questions on one thread, alternating with the float32 model, and is
compared with it vector by vector. The issue accepts a faster copy only if every quality
benchmark scores the same to three decimals, vectors compared too.

    .venv/bin/python -m bench.experiments.query_quantization [--questions N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import SCIFACT, median, percentile, scifact_queries

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "articles"


def questions(limit: int) -> list[str]:
    """SciFact's claims when ../shared is there, else the sample articles' first sentences."""
    if (SCIFACT / "queries.jsonl").exists():
        return scifact_queries(limit)
    lines = [line for path in sorted(SAMPLE.glob("*.txt")) for line in path.read_text().splitlines()]
    return [line[:200] for line in lines if len(line.split()) > 8][:limit]


def time_model(encode, texts: list[str]) -> list[float]:
    times = []
    for text in texts:
        started = time.perf_counter()
        encode(text)
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure(limit: int) -> dict:
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from tokenizers import Tokenizer

    from index.encoder import Encoder
    from index.query_model import MODEL_FILE, TOKENIZER_FILE, OnnxQueryModel, export

    encoder = Encoder(threads=1)  # qa-serve's default (QA_QUERY_THREADS)
    served = encoder.encode_query  # the float32 ONNX model qa-serve uses
    texts = questions(limit)
    folder = Path(tempfile.mkdtemp(prefix="qa-int8-"))
    export(encoder._model, encoder.model_name, folder / "float32")
    exported = folder / "float32" / MODEL_FILE
    tokenizer = Tokenizer.from_file(str(folder / "float32" / TOKENIZER_FILE))
    tokenizer.enable_truncation(encoder.max_tokens + 2)
    matmuls = [n.name for n in onnx.load(str(exported)).graph.node if n.op_type == "MatMul"]
    feed_forward = [n for n in matmuls if "intermediate" in n or ("/output/dense" in n and "attention" not in n)]
    variants = {
        "int8, per tensor": {},
        "int8, per channel": {"per_channel": True},
        "int8, per channel, feed-forward only": {"per_channel": True, "nodes_to_quantize": feed_forward},
    }
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    reference = np.stack([served(t) for t in texts])
    figures: dict = {"questions": len(texts), "float32": {}}
    float_times: list[float] = []
    for label, extra in variants.items():
        path = folder / f"{len(figures)}.onnx"
        quantize_dynamic(str(exported), str(path), weight_type=QuantType.QInt8, **extra)
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        model = OnnxQueryModel(session, tokenizer, "mean")
        time_model(model.encode, texts[:20])
        time_model(served, texts[:20])
        quantised_times, float_round = [], []
        for _ in range(2):  # alternated, so both see the same machine
            quantised_times += time_model(model.encode, texts)
            float_round += time_model(served, texts)
        float_times += float_round
        cosines = np.einsum("ij,ij->i", reference, np.stack([model.encode(t) for t in texts]))
        figures[label] = {
            "p50_ms": round(median(quantised_times), 2),
            "p99_ms": round(percentile(quantised_times, 99), 2),
            "float32_p50_ms_same_rounds": round(median(float_round), 2),
            "cosine_to_float32_min": round(float(cosines.min()), 4),
            "cosine_to_float32_median": round(float(np.median(cosines)), 4),
            "file_mb": round(path.stat().st_size / 2**20, 1),
        }
    figures["float32"] = {
        "p50_ms": round(median(float_times), 2),
        "p99_ms": round(percentile(float_times, 99), 2),
        "file_mb": round(exported.stat().st_size / 2**20, 1),
    }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=300)
    args = parser.parse_args(argv)
    figures = measure(args.questions)
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
