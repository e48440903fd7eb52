"""Paper ``dream_sr``: DREAM: Diffusion Rectification and Estimation-Adaptive Models."""
