"""Worlds: the vocabularies tasks draw from, and (for the glyph world) an exact renderer.

``everyday`` is the published vocabulary (real models, VLM judges); ``glyph`` is the sandbox
world, whose every answer can be rendered exactly and parsed back exactly.
"""

from __future__ import annotations

from .base import Thing, World, get_world, register_world

__all__ = ["Thing", "World", "get_world", "register_world"]
