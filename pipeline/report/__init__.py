"""The report of a run: assembled from the staged artifacts, gated, summarized and rendered as HTML."""
