"""The names themselves: reading and encoding them, batches, folds, and the gazetteer of real places."""
