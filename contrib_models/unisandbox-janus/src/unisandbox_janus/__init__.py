"""unisandbox-janus: DeepSeek's Janus (transformers) as a unisandbox model plugin."""

__version__ = "0.1.0"
