"""gridvm: virtual machines for the scientists of a research computing site."""

__version__ = "0.1.0"
