"""Preprocessing: decode, resample, normalise, split, and store as safetensors shards."""
