"""reports: renders tables, figures and the HTML report from bench's tidy results. Never imports torch."""
__version__ = "0.1.0"
