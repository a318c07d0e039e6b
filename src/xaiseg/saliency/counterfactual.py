"""The counterfactual map: how far an image lies from its healthy reconstruction.

The model is a counterfactual folder (``train/counterfactual.py``): its output already
is the residual evidence in the channel and direction chosen from labels, so the
target plays no part: the map says where the image differs from healthy images.
"""

import torch

from xaiseg.saliency.base import SaliencyMethod


class Counterfactual(SaliencyMethod):
    def attribute(self, forward, images, extra):
        with torch.no_grad():
            return self.model(images)
