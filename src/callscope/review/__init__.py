"""What people do with a processed call: its document, search, comments, exports, categories,
evaluations and scorecards."""
