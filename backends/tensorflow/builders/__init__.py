"""Builders: one per nengo operator, neuron and process family, lowering the built model to TensorFlow."""
