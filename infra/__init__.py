"""Infrastructure: the Temporal connection and payload codec, the read-model database
(engine, migrations, the timeliness rollup's SQL), logging, metrics and tracing."""
