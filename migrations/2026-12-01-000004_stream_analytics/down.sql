DROP TABLE stream_analytics;
