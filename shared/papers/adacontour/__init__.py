"""Paper ``adacontour``: AdaContour: Adaptive Contour Descriptor with Hierarchical Representation."""
