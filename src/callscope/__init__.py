"""callscope: self-hosted call recording and transcript review for contact centres."""

__version__ = "0.1.0"
