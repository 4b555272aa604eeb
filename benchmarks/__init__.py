"""Speed and memory harness for nhw backends (not part of the test suite)."""
