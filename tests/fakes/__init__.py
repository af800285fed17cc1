"""Local fake chat platforms speaking each platform's wire protocol, for the channel tests and benchmarks."""
