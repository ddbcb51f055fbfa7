"""Models registered in MMDetection's MODELS registry."""
from .. import require_openmmlab

require_openmmlab(__name__)

from . import classifiers, distillers, losses  # noqa: F401

__all__ = ['classifiers', 'distillers', 'losses']
