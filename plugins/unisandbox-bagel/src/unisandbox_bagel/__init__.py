"""BAGEL for unisandbox: the Mixture-of-Transformers unified model, loaded from the released layout.

Importing this package is cheap (no torch); the model code lives in submodules that the
``bagel`` factory imports when a model is actually built.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
