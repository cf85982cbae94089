"""``unisandbox judges list|check``."""

from __future__ import annotations

from .listing import _list_group

judges = _list_group("judge", "requires", "requires")
