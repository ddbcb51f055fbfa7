from .. import require_openmmlab

require_openmmlab(__name__)
# the imports below need a working stack (checked above)

__all__ = []
from .cifar100 import CIFAR100Dataset, write_cifar100_like  # noqa: E402
__all__ += ['CIFAR100Dataset', 'write_cifar100_like']
from .digits_det import DigitsDetDataset, build_digits_det  # noqa: E402
__all__ += ['DigitsDetDataset', 'build_digits_det']
