"""Output formats: each module renders findings and a summary for one ``--format``."""
