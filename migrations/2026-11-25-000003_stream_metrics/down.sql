DROP TABLE stream_metrics;
