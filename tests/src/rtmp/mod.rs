//! A small RTMP test publisher (being written).
