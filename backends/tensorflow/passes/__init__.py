"""Graph passes over the built model before it is lowered: operator merging, filter merging, learning-rule factoring, step-local state."""
