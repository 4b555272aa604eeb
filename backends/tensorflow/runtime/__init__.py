"""The compiled simulation: the loop, the signal layout, host callbacks and feeds, parameters, input checks."""
