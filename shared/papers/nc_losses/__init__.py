"""Paper ``nc_losses``: Are All Losses Created Equal: A Neural Collapse Perspective."""
