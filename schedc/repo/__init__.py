"""The git-backed policy repository (see the repository issue)."""
