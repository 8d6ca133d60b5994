"""Seeing inside the networks: filters, feature maps, Grad-CAM, occlusion and the ZF-Net deconvnet.

Every function returns arrays (numpy); :mod:`reslab.visualize.draw` turns them into pictures.
"""

from .filters import filters, first_conv, grid
from .gradcam import gradcam
from .layers import default_layer, layer_names, resolve_layer
from .loading import LoadedModel, class_index, display_image, load_image, load_model

__all__ = [
    "LoadedModel",
    "class_index",
    "default_layer",
    "display_image",
    "filters",
    "first_conv",
    "gradcam",
    "grid",
    "layer_names",
    "load_image",
    "load_model",
    "resolve_layer",
]
