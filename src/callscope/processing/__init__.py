"""A call's way through callscope: ingest (metadata, audio, rows), jobs and the workers that run
them, the processing pipeline, and the results and redaction it writes."""
