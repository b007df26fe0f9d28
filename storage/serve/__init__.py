"""Adapters that reach a Ray Serve deployment through a named handle: the only Ray in storage/."""
