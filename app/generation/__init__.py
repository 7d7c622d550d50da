"""Drawing names from a language model: temperature, top-k, prefixes, filters, novelty, under a compute deadline."""
