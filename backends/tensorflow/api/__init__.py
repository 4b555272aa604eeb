"""The user-facing face: Keras model and training, NengoDL's TensorNode/Layer, Converter, dists, losses, callbacks, freezing."""
