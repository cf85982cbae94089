"""The ``unisandbox`` command line (click). Modules here import no torch at module level."""
