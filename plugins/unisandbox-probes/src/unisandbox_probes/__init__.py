"""Mechanistic probes for unisandbox: what query tokens and thinking contexts encode."""

from __future__ import annotations

__version__ = "0.1.0"
