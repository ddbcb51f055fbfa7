"""Why a checkpoint named in a config could not be read: a failed download (fix: download it
where there is network, give the path) or a damaged file (fix: replace it, for a URL the copy in
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
    """Whether ``exc`` or its cause is a failed network transfer (urllib, http.client, socket)."""
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
    """The RuntimeError for config ``field``'s checkpoint ``source`` that failed with ``exc``:
    a failed download told apart from a damaged file.
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
