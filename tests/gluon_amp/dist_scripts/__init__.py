"""Scripts the distributed and launcher tests run as separate processes, and their helpers."""
