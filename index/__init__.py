"""The on-disk index (dense + lexical + chunk store), loading, and hybrid search.

This package imports neither `ingest` nor `qa_service`: both depend on it.
"""
