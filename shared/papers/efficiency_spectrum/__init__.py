"""Paper ``efficiency_spectrum``: The Efficiency Spectrum of Large Language Models: An Algorithmic Survey."""
