"""Judges: the cache every judge runs behind, the deterministic and VLM judges, templates."""
