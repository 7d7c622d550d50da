"""The from-scratch numpy math: RNN and LSTM cells forward and backward, the network around them, optimisers."""
