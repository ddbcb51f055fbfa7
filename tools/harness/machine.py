"""The machine a measurement ran on, for the reports of the benchmarks and studies."""
import os
import platform

import torch

__all__ = ['cpu_model', 'describe_machine']


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows, else ''."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> str:
    """Cores, architecture, CPU model, torch version and torch threads, on one line.

    Returns:
        str: E.g. ``'2-core x86_64 CPU (Intel(R) Xeon(R) ...), torch 2.13.0+cpu, 1 torch
        thread(s)'``.
    """
    return (f'{os.cpu_count()}-core {platform.machine()} CPU ({cpu_model() or "unknown model"}), '
            f'torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)')
