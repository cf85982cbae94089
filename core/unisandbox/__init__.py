"""unisandbox: does a unified multimodal model's understanding inform its generation?

The core holds the plugin hooks, the typed records, the runner and the CLI. Models, tasks,
judges and trainers arrive through pluggy hooks (see PLUGINS.md); built-ins use the same hooks.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: The plugin API this core speaks. A plugin module declares the version it was written for
#: as a module attribute ``PLUGIN_API_VERSION``; a different value is refused at load time.
PLUGIN_API_VERSION = 1

__all__ = ["PLUGIN_API_VERSION", "__version__"]
