"""Errors the risk model raises to its callers. Plain exceptions with one message: they pickle, so they
cross Ray calls intact (a caller catches `ModelNotReady` around a Serve handle call)."""


class ModelNotReady(Exception):
    """No usable model is loaded (artifact missing, corrupted, or still loading); the message says why."""


class ArtifactError(Exception):
    """A model artifact cannot be used; the message names the version and the file at fault."""
