"""Language models as the product sees them: neural, n-gram, ensembles and mixtures, their checkpoints and loading."""
