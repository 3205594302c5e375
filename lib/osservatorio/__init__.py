"""osservatorio: action-research workbench for an Observatory of the Social Economy."""

__version__ = "0.1.0"
