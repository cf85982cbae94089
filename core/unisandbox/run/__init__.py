"""Runs: configuration, seeds, the run folder, the generate -> judge -> aggregate loop."""
