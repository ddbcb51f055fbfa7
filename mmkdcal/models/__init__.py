"""Models registered in MMDetection's MODELS registry."""
from ..utils.stack import require_openmmlab

require_openmmlab(__name__)
# the imports below need a working stack (checked above)

from . import classifiers, distillers, losses  # noqa: E402,F401

__all__ = ['classifiers', 'distillers', 'losses']
