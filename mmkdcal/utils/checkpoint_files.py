"""Finding checkpoints in a work dir: the latest one to resume from, the previous complete one.

MMEngine's auto-resume reads only ``last_checkpoint``; these helpers read the checkpoint files
the ``CheckpointHook`` writes. "Complete" (:func:`is_complete`) is the project's one integrity
check; nothing is unpickled to decide it (docs/usage.md).
"""
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional, Tuple

__all__ = ['ResumeError', 'checkpoint_step', 'checkpoint_template', 'is_complete',
           'list_checkpoints', 'previous_checkpoint']

_ZIP_MAGIC = b'PK\x03\x04'
#: The pickle PROTO opcode and the protocols (2-5) that start a legacy torch checkpoint.
_PICKLE_PROTO, _PICKLE_PROTOCOLS = 0x80, range(2, 6)


class ResumeError(RuntimeError):
    """``--resume`` cannot tell which checkpoint to resume from; nothing was started."""


def checkpoint_template(checkpoint_hook_cfg: Optional[dict]) -> str:
    """The file name template of the config's ``CheckpointHook`` (``cfg.default_hooks.checkpoint``):
    ``filename_tmpl``, else ``'epoch_{}.pth'`` by epoch (its default) or ``'iter_{}.pth'``.
    """
    hook = checkpoint_hook_cfg or {}
    if hook.get('filename_tmpl'):
        return hook['filename_tmpl']
    return 'epoch_{}.pth' if hook.get('by_epoch', True) else 'iter_{}.pth'


def _pattern(template: str) -> 're.Pattern':
    head, sep, tail = template.partition('{}')
    if not sep:
        raise ValueError(f'checkpoint filename_tmpl {template!r} has no "{{}}" for the step.')
    return re.compile(re.escape(head) + r'(\d+)' + re.escape(tail) + r'\Z')


def checkpoint_step(path: str, template: str) -> Optional[int]:
    """The step in a checkpoint's file name by ``template`` (``iter_40.pth`` -> 40), or None."""
    match = _pattern(template).match(osp.basename(path))
    return int(match.group(1)) if match else None


def list_checkpoints(directory: str, template: str) -> List[Tuple[int, str]]:
    """``(step, path)`` of the files in ``directory`` named by ``template``, oldest first."""
    if not osp.isdir(directory):
        return []
    pattern = _pattern(template)
    found = []
    for name in os.listdir(directory):
        match = pattern.match(name)
        path = osp.join(directory, name)
        if match and osp.isfile(path):
            found.append((int(match.group(1)), path))
    return sorted(found)


def is_complete(path: str) -> bool:
    """Whether ``path`` is a complete checkpoint: a zip whose central directory can be read, or
    a file of torch's legacy format (a pickle stream: the loader judges the rest).
    """
    try:
        with open(path, 'rb') as f:
            magic = f.read(4)
    except OSError:
        return False
    if magic != _ZIP_MAGIC:
        return len(magic) >= 2 and magic[0] == _PICKLE_PROTO and magic[1] in _PICKLE_PROTOCOLS
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
        return True
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def previous_checkpoint(path: str) -> Optional[str]:
    """The newest complete checkpoint beside ``path`` older than it (by step when both names have
    one, else by modification time), or None.
    """
    directory = osp.dirname(osp.abspath(path))
    if not osp.isdir(directory):
        return None
    name = osp.basename(path)
    step_of = re.compile(r'^(.*?)(\d+)(\.pth)\Z')
    own = step_of.match(name)
    try:
        own_mtime = osp.getmtime(path)
    except OSError:
        own_mtime = float('inf')
    older = []
    for other in os.listdir(directory):
        full = osp.join(directory, other)
        if other == name or not other.endswith('.pth') or not osp.isfile(full):
            continue
        match = step_of.match(other)
        if own and match and match.group(1) == own.group(1):
            key = (int(match.group(2)), osp.getmtime(full))
            if key[0] >= int(own.group(2)):
                continue
        else:
            key = (-1, osp.getmtime(full))
            if key[1] > own_mtime:
                continue
        older.append((key, full))
    for _, candidate in sorted(older, reverse=True):
        if is_complete(candidate):
            return candidate
    return None
