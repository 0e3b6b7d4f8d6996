"""Words in, numbers out: segments and turns, conversation metrics, sentiment, personal data.
No database and no web here: plain data in and out."""
