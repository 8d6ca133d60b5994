"""Seeing inside the networks: filters, feature maps, Grad-CAM, occlusion and the ZF-Net deconvnet.

Every function returns arrays (numpy); :mod:`reslab.visualize.draw` turns them into pictures.
"""

from .deconv import DECONVNET, GUIDED, DeconvTop, Projection, deconv, deconv_method, deconv_top, display_projection
from .features import feature_maps
from .filters import filters, first_conv, grid
from .gradcam import gradcam
from .layers import default_layer, layer_names, resolve_layer
from .loading import LoadedModel, class_index, display_image, load_image, load_model
from .occlusion import default_patch, occlusion, occlusion_positions

__all__ = [
    "DECONVNET",
    "GUIDED",
    "DeconvTop",
    "LoadedModel",
    "Projection",
    "class_index",
    "deconv",
    "deconv_method",
    "deconv_top",
    "default_layer",
    "default_patch",
    "display_image",
    "display_projection",
    "feature_maps",
    "filters",
    "first_conv",
    "gradcam",
    "grid",
    "layer_names",
    "load_image",
    "load_model",
    "occlusion",
    "occlusion_positions",
    "resolve_layer",
]
