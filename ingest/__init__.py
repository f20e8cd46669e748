"""Articles in -> clean text, sections, speakers -> chunks -> vectors -> a new index version."""
