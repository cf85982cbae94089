"""Built-in models that need no weights (the glyph oracle)."""
