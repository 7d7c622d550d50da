"""Measuring models: the comparison report and the fidelity judge of state names."""
