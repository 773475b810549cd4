"""Layers shared by the SAM-style families: prompt encoder, two-way transformer, mask decoder."""
