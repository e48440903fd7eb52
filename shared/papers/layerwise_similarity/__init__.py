"""Paper ``layerwise_similarity``: Tracing Representation Progression: Analyzing and Enhancing Layer-Wise Similarity."""
