"""Toponimo: character-level language models that invent Mexican municipality names, and their web app.

Floors, each importing only those below it (tests/test_layers.py checks it):

    web/, web/pages/   the FastAPI service and its Spanish pages
    training/, eval/   fitting models (the loop, ensembles, the n-gram) · measuring them (report, fidelity)
    generation/        drawing names from a model: filters, novelty, deadline
    lm/                language models behind one interface: neural, n-gram, ensembles, checkpoints
    nn/                the from-scratch numpy math: RNN and LSTM cells, the network, optimisers
    data/              the names: corpus, vocabulary, folds, gazetteer
    paths.py, flags.py where files live · how every CLI checks its flags (FlagError, Range)
    console.py         how a CLI writes its results (a closed pipe or a full disk: no traceback)

The modules at this level are the entry points: ``python -m app`` (and ``app.main:app`` for uvicorn),
``app.train``, ``app.sample``, ``app.cv``, ``app.mixture``, ``app.distill``, ``app.evaluate``,
``app.gradcheck``.
"""
