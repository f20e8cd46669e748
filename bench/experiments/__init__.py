"""Experiments: measurements behind an idea that was dropped, and one-off diagnoses. They are
not scenarios (`python -m bench` does not list them) and publish nothing; each still runs as
`python -m bench.experiments.NAME` to repeat what the history documents (docs/history/) say.

- quality_tune: numpy sweeps of fusion settings, used to choose `Searcher`'s ranking; the
  chosen setting is measured by `python -m bench quality`.
- lexical_engines: our BM25 postings against tantivy (issue 15); tantivy was not adopted.
- query_quantization: int8 copies of the question encoder (issue 17); none is served.
- search_profile: where one question's time goes in-process on a large index, used to
  compare a change with the code before it (PYTHONPATH=OLD).
"""
