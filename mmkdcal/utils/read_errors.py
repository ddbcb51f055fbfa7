"""Why a checkpoint named in a config could not be read: a failed download or a damaged file.

The two need different fixes. A URL that cannot be reached (no network, a proxy, a firewall, a
server error) is fixed by downloading the file where there is network and giving its local path;
advice to "check that the file is complete" would send the user after a file that was never
written. A file that was read but is cut short or not a checkpoint is fixed by replacing that
file (for a URL: the copy MMEngine keeps in torch's download cache,
``$TORCH_HOME/hub/checkpoints``).
"""
import http.client
import os.path as osp
import socket
import urllib.error
from urllib.parse import urlparse

import torch

__all__ = ['checkpoint_read_error', 'is_network_error', 'is_url']

_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError,
                   socket.timeout, TimeoutError, socket.gaierror)


def is_url(source: str) -> bool:
    """Whether ``source`` is downloaded by MMEngine (``http://``, ``https://``)."""
    return source.startswith(('http://', 'https://'))


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, is a failed network transfer.

    Args:
        exc: The exception raised while loading.

    Returns:
        True for ``urllib``/``http.client``/socket errors (no route, refused, DNS, timeout,
        HTTP error status, connection cut during the transfer).
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, _NETWORK_ERRORS):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _download_cache(url: str) -> str:
    """Where MMEngine keeps its copy of ``url``: torch's hub dir (``$TORCH_HOME/hub``), as
    MMEngine downloads through ``torch.hub.load_state_dict_from_url`` with torch >= 1.7."""
    return osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(url).path))


def checkpoint_read_error(field: str, source: str, exc: BaseException) -> RuntimeError:
    """The error to raise when the checkpoint of config field ``field`` could not be loaded.

    Args:
        field: The config field that names the checkpoint (``'model.teacher_ckpt'``).
        source: Its value, a local path or a URL.
        exc: What loading raised.

    Returns:
        A RuntimeError whose message tells a failed download (with the advice to download the
        file first and give its path) from a file that was read but is damaged.
    """
    cause = f'{type(exc).__name__}: {exc}'
    if is_url(source) and is_network_error(exc):
        return RuntimeError(
            f'{field} {source!r} could not be downloaded ({cause}): the network or the server '
            'could not be reached from this machine. Download the file first where there is '
            f'network (e.g. `wget {source}`), copy it here, and set {field} to its local path.')
    if is_url(source):
        cached = _download_cache(source)
        return RuntimeError(
            f'{field} {source!r} was downloaded to {cached}, but that file could not be read '
            f'as a checkpoint ({cause}): the copy is incomplete or not a torch checkpoint. '
            f'Remove {cached} so that the next run downloads it again; if that copy is damaged '
            'too, the file at the URL is: use another copy of the checkpoint and set '
            f'{field} to its local path.')
    return RuntimeError(
        f'{field} {source!r} could not be read as a checkpoint ({cause}). Check that the file '
        'is complete and was written by torch.save / MMEngine.')
