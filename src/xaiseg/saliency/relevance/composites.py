"""Composites: which rule each kind of layer gets (zennit's presets, by the same names).

"first" is the first convolution or linear layer the input meets; "conv" and "linear"
the others. Parameter-free layers (average pooling, a batch norm that could not be
folded) always take the epsilon rule, max-pooling and activations pass relevance on.
"""

COMPOSITES: dict[str, dict[str, str]] = {
    "epsilon": {"first": "epsilon", "conv": "epsilon", "linear": "epsilon"},
    "epsilon_plus": {"first": "zplus", "conv": "zplus", "linear": "epsilon"},
    "epsilon_plus_flat": {"first": "flat", "conv": "zplus", "linear": "epsilon"},
    "epsilon_gamma_flat": {"first": "flat", "conv": "gamma", "linear": "epsilon"},
    "epsilon_alpha2_beta1_flat": {"first": "flat", "conv": "alpha_beta", "linear": "epsilon"},
}
LAYER_KINDS = ("first", "conv", "linear")
