"""Paper ``icl_compression``: From Compression to Expansion: A Layerwise Analysis of In-Context Learning."""
