"""The market-day simulation on SimBench profiles (the demo)."""
