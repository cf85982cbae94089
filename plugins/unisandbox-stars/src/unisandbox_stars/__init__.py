"""unisandbox-stars: knowledge injection and STARS self-training trainers for unisandbox."""

from __future__ import annotations

__version__ = "0.1.0"
