"""unixlib: a trainable, testable reproduction of UniX (arXiv 2601.11522)."""

__version__ = "0.1.0"
