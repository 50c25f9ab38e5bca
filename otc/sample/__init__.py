"""Sample data: realistic FINRA weekly files for the demo, tests and benchmarks."""
