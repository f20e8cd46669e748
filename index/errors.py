"""Domain errors, translated to CLI messages and HTTP responses at the edges."""


class QAError(Exception):
    """Base class for errors a user can act on; the message says what is wrong."""


class IndexNotFoundError(QAError):
    """No published index version exists at the given location."""


class IndexCorruptError(QAError):
    """A file of an index version is missing, truncated or altered."""


class IndexMismatchError(QAError):
    """The index was built with settings the caller cannot use (format, model, dimension)."""


class IndexWriteError(QAError):
    """A new index version could not be written (full disk, permissions); nothing was published."""


class IngestError(QAError):
    """Ingest cannot go on (no articles, another ingest running, bad settings)."""


class ModelLoadError(QAError):
    """The embedding model could not be loaded."""


class InvalidQueryError(QAError):
    """A search request is malformed (empty question, unknown filter value, bad top_k)."""


class RerankError(QAError):
    """The reranker gave no usable order (timed out, unreachable, an HTTP error, a malformed
    answer); the search keeps the fused order and reports this message as `rerank_error`."""
