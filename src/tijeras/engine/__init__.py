"""Inference engine: preprocessing, the predictor, embedding cache and post-processing."""
