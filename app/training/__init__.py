"""Fitting models: flags and their ranges, the training loop, cross-fitted ensembles, the n-gram, promotion."""
