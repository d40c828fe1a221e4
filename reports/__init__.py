"""Reports: turn a results directory into tables, statistics and one HTML page."""
