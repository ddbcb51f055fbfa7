"""The one-line machine description that the studies print next to their wall times."""
import os
import platform

import torch

__all__ = ['describe_machine']


def describe_machine() -> str:
    """Cores, architecture, CPU model, torch version and torch threads of this machine.

    Returns:
        str: E.g. ``'2-core x86_64 CPU (Intel(R) Xeon(R) ...), torch 2.13.0+cpu, 1 torch
        thread(s)'``.
    """
    model = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            model = next((ln.split(':', 1)[1].strip() for ln in f
                          if ln.startswith('model name')), model)
    except OSError:
        pass
    return (f'{os.cpu_count()}-core {platform.machine()} CPU ({model or "unknown model"}), '
            f'torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)')
