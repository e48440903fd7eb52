"""Paper ``generalized_nc``: Generalized Neural Collapse for a Large Number of Classes."""
