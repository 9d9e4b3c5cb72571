"""Runnable examples: the main job (``python -m examples.main``), hazards, distributed."""
