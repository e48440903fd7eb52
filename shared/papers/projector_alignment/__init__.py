"""Paper ``projector_alignment``: Analyzing Fine-Grained Alignment and Enhancing Vision Understanding in Multimodal Language Models."""
