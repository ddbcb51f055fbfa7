"""The datasets the shipped configs use, registered in MMDetection's ``DATASETS`` registry."""
from ..utils.stack import require_openmmlab

require_openmmlab(__name__)
# the imports below need a working stack (checked above)

from .cifar100 import CIFAR100Dataset  # noqa: E402
from .digits_det import DigitsDetDataset, build_digits_det  # noqa: E402

__all__ = ['CIFAR100Dataset', 'DigitsDetDataset', 'build_digits_det']
