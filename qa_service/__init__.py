"""The HTTP service: /ask, articles, admin reindex, health and metrics; serves the widget."""
