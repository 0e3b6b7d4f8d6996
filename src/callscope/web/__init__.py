"""The HTTP side of callscope: the API (and, later, the review pages)."""
