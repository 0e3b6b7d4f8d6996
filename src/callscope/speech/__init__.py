"""Audio in, words out: decoding and renditions, speech recognition, speaker attribution and
separation. No database and no web here: plain data in and out."""
