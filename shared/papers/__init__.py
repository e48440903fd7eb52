"""One package per paper, named by its id: that paper's own experiments, figures and claims. Imports nothing."""
