"""DigitsDet: a small, embedded, deterministic object-detection data set (docs/usage.md).

Generated from scikit-learn's 1797 real 8x8 digit scans (no download): 1-6 upscaled digits per
cluttered gray canvas, boxes the tight extent of each digit's ink (:data:`INK_THRESHOLD`), scans
split by class into disjoint train/calib/val pools. The same parameters give byte-identical
files; :class:`DigitsDetDataset` builds the data on first use.
"""
import functools
import hashlib
import inspect
import json
import os
import os.path as osp
import shutil
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import MMLogger
from PIL import Image
from pycocotools import mask as mask_utils
from sklearn.datasets import load_digits

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from ..utils.progress import EtaProgress

__all__ = [
    'DIGITS_DET_VERSION', 'DIGITS_DET_CLASSES', 'DIGITS_DET_SPLITS', 'INK_THRESHOLD',
    'build_digits_det', 'digits_det_status', 'DigitsDetDataset'
]

#: Version of the generator; bump it whenever the pixels or the JSON it writes change.
DIGITS_DET_VERSION = 1
#: Class names, in label order (category id = label + 1).
DIGITS_DET_CLASSES = tuple(str(d) for d in range(10))
#: Split names, in the order their pools are carved from the scans.
DIGITS_DET_SPLITS = ('train', 'calib', 'val')
#: Fraction of every class's scans that goes to each split's pool.
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
#: A scaled digit pixel is "ink" when its value is at least this fraction of full ink.
INK_THRESHOLD = 0.25

_REBUILD_HINT = ('Rebuild it with `python tools/build_digits_det.py --root {root} --force` '
                 '(add --n-train/--n-calib/--n-val/--seed/--with-masks to match the config), '
                 'or point `data_root` at an empty folder.')


def _check_params(n_train: int, n_calib: int, n_val: int, canvas: int, seed: int,
                  min_digits: int, max_digits: int, digit_size: Sequence[int],
                  with_masks: bool = False) -> Dict[str, Any]:
    """Validate the build parameters and return them as a JSON-ready dict."""
    for name, value in (('n_train', n_train), ('n_calib', n_calib), ('n_val', n_val),
                        ('canvas', canvas), ('seed', seed), ('min_digits', min_digits),
                        ('max_digits', max_digits)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f'{name} must be an int, got {type(value).__name__} ({value!r}).')
    for name, value in (('n_train', n_train), ('n_calib', n_calib), ('n_val', n_val)):
        if value < 1:
            raise ValueError(f'{name} must be >= 1 (number of images in that split), got {value}.')
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}.')
    if not 1 <= min_digits <= max_digits:
        raise ValueError(f'need 1 <= min_digits <= max_digits, got min_digits={min_digits}, '
                         f'max_digits={max_digits}.')
    if len(digit_size) != 2 or not all(isinstance(s, (int, np.integer)) for s in digit_size):
        raise TypeError(f'digit_size must be a pair of ints (min_px, max_px), got {digit_size!r}.')
    lo, hi = int(digit_size[0]), int(digit_size[1])
    if not 8 <= lo <= hi:
        raise ValueError(f'digit_size must satisfy 8 <= min_px <= max_px, got {digit_size!r}.')
    if canvas < 2 * hi:
        raise ValueError(f'canvas ({canvas}) must be at least twice the largest digit size '
                         f'digit_size[1]={hi}; raise canvas or lower digit_size.')
    if not isinstance(with_masks, (bool, np.bool_)):
        raise TypeError(f'with_masks must be a bool, got {type(with_masks).__name__} '
                        f'({with_masks!r}).')
    params = dict(
        version=DIGITS_DET_VERSION, n_train=int(n_train), n_calib=int(n_calib),
        n_val=int(n_val), canvas=int(canvas), seed=int(seed), min_digits=int(min_digits),
        max_digits=int(max_digits), digit_size=[lo, hi],
        split_fractions=list(SPLIT_FRACTIONS), ink_threshold=INK_THRESHOLD)
    if with_masks:  # only when set, so default builds keep their parameters and hash
        params['with_masks'] = True
    return params


def _paths(root: str) -> Dict[str, str]:
    paths = dict(root=root, meta=osp.join(root, 'meta.json'))
    for split in DIGITS_DET_SPLITS:
        paths[f'{split}_ann'] = osp.join(root, 'annotations', f'{split}.json')
        paths[f'{split}_img'] = osp.join(root, split)
    return paths


def _file_name(index: int) -> str:
    return f'{index:06d}.png'


def digits_det_status(root: str, params: Dict[str, Any]) -> Tuple[str, str]:
    """``(state, detail)`` of a folder against the build ``params``: state ``'absent'``, ``'same'``,
    ``'different'`` or ``'partial'``; detail says why.
    """
    if not osp.isdir(root) or not os.listdir(root):
        return 'absent', f'{root} is missing or empty'
    paths = _paths(root)
    if not osp.isfile(paths['meta']):
        return 'partial', (f'{root} is not empty but has no meta.json (an interrupted build '
                           'or other files)')
    try:
        with open(paths['meta']) as f:
            meta = json.load(f)
        found = meta['params']
    except (ValueError, KeyError, TypeError) as exc:
        return 'partial', f'{paths["meta"]} is unreadable ({exc!r})'
    if found != params:
        diff = {k: (found.get(k), params.get(k))
                for k in sorted(set(found) | set(params)) if found.get(k) != params.get(k)}
        return 'different', ('it holds a DigitsDet build with other parameters '
                             f'(field: (found, wanted)) {diff}')
    for split in DIGITS_DET_SPLITS:
        if not osp.isfile(paths[f'{split}_ann']):
            return 'partial', f'{paths[split + "_ann"]} is missing'
        img_dir = paths[f'{split}_img']
        n = params[f'n_{split}']
        if not osp.isdir(img_dir):
            return 'partial', f'{img_dir} is missing'
        names = set(os.listdir(img_dir))
        missing = [i for i in range(n) if _file_name(i) not in names]
        if missing:
            return 'partial', (f'{len(missing)} of {n} images are missing from {img_dir} '
                               f'(first: {_file_name(missing[0])})')
    return 'same', f'{root} holds this build (hash {meta.get("content_sha256", "?")[:12]})'


@functools.lru_cache(maxsize=None)
def _cubic_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Bicubic resampling matrix (``n_out x n_in``; Keys' kernel, a = -0.5, half-pixel centres,
    edge replication): PIL's ``BICUBIC`` except at the border; cached, not to be changed.
    """
    a = -0.5
    u = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    base = np.floor(u).astype(int)
    w = np.zeros((n_out, n_in))
    for off in range(-1, 3):
        j = base + off
        t = np.abs(u - j)
        k = np.where(t <= 1, (a + 2) * t**3 - (a + 3) * t**2 + 1,
                     np.where(t < 2, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0))
        np.add.at(w, (np.arange(n_out), np.clip(j, 0, n_in - 1)), k)
    return w


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """An 8x8 scan (or a crop of one) resized bicubically to ``h`` x ``w``, clipped to [0, 1]."""
    out = _cubic_matrix(h, img.shape[0]) @ img @ _cubic_matrix(w, img.shape[1]).T
    return np.clip(out, 0.0, 1.0)


def _stratified_pools(targets: np.ndarray, seed: int) -> Dict[str, np.ndarray]:
    """Split scan indices per class into disjoint train/calib/val pools (60/20/20)."""
    rng = np.random.default_rng([seed, 9001])
    pools: Dict[str, List[np.ndarray]] = {s: [] for s in DIGITS_DET_SPLITS}
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(targets == c))
        n_tr = int(round(SPLIT_FRACTIONS[0] * len(idx)))
        n_ca = int(round(SPLIT_FRACTIONS[1] * len(idx)))
        pools['train'].append(idx[:n_tr])
        pools['calib'].append(idx[n_tr:n_tr + n_ca])
        pools['val'].append(idx[n_tr + n_ca:])
    return {s: np.sort(np.concatenate(v)) for s, v in pools.items()}


def _stamp(canvas: np.ndarray, patch: np.ndarray, y: int, x: int) -> None:
    """Composite ``patch`` onto ``canvas`` at (y, x) by per-pixel maximum, clipped to it."""
    h, w = patch.shape
    H, W = canvas.shape
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, H), min(x + w, W)
    if y1 <= y0 or x1 <= x0:
        return
    region = canvas[y0:y1, x0:x1]
    np.maximum(region, patch[y0 - y:y1 - y, x0 - x:x1 - x], out=region)


def _stroke(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, int, int]:
    """A low-contrast anti-aliased quadratic curve (3 segments), as a local patch."""
    length = rng.uniform(8, 40)
    width = rng.uniform(0.8, 2.5)
    amp = rng.uniform(0.1, 0.4)
    p0 = rng.uniform(0, size, 2)
    ang = rng.uniform(0, 2 * np.pi)
    p2 = p0 + length * np.array([np.cos(ang), np.sin(ang)])
    p1 = (p0 + p2) / 2 + rng.normal(0, length / 4, 2)
    t = np.linspace(0, 1, 4)[:, None]
    pts = (1 - t)**2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2  # (4, 2) as (y, x)
    pad = int(np.ceil(width)) + 1
    lo = np.floor(pts.min(0)).astype(int) - pad
    hi = np.ceil(pts.max(0)).astype(int) + pad
    yy, xx = np.mgrid[lo[0]:hi[0], lo[1]:hi[1]].astype(float)
    d = np.full(yy.shape, np.inf)
    for a, b in zip(pts[:-1], pts[1:]):
        ab = b - a
        s = np.clip(((yy - a[0]) * ab[0] + (xx - a[1]) * ab[1]) / max(ab @ ab, 1e-9), 0, 1)
        d = np.minimum(d, np.hypot(yy - a[0] - s * ab[0], xx - a[1] - s * ab[1]))
    patch = amp * np.clip(width / 2 + 0.5 - d, 0.0, 1.0)
    return patch, int(lo[0]), int(lo[1])


def _blob(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, int, int]:
    """A faint Gaussian blob, as a local patch."""
    sigma = rng.uniform(2.0, 8.0)
    amp = rng.uniform(0.04, 0.18)
    cy, cx = rng.uniform(0, size, 2)
    r = int(np.ceil(3 * sigma))
    y0, x0 = int(cy) - r, int(cx) - r
    yy, xx = np.mgrid[y0:y0 + 2 * r + 1, x0:x0 + 2 * r + 1].astype(float)
    patch = amp * np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * sigma**2))
    return patch, y0, x0


def _fragment(rng: np.random.Generator, scan: np.ndarray, size_range: Tuple[int, int],
              canvas: int) -> Tuple[np.ndarray, int, int]:
    """A faint piece (at most 5 of 8 rows or columns) of a scan: a stroke, not a digit."""
    k = int(rng.integers(2, 6))
    side = int(rng.integers(4))
    crop = (scan[:k], scan[8 - k:], scan[:, :k], scan[:, 8 - k:])[side]
    s = int(rng.integers(size_range[0], size_range[1] + 1))
    h = max(2, round(s * crop.shape[0] / 8))
    w = max(2, round(s * crop.shape[1] / 8))
    patch = rng.uniform(0.2, 0.45) * _resize(crop, h, w)
    y, x = rng.integers(-h // 2, canvas - h // 2), rng.integers(-w // 2, canvas - w // 2)
    return patch, int(y), int(x)


def _render_image(rng: np.random.Generator, params: Dict[str, Any], scans: np.ndarray,
                  labels: np.ndarray, pool: np.ndarray) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """Render one image and its annotations (without ids)."""
    size = params['canvas']
    lo_px, hi_px = params['digit_size']
    # Background: level + linear gradient, then strokes, blobs, fragments.
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = rng.uniform(0.0, 0.2) + rng.uniform(-0.08, 0.08) * yy + rng.uniform(-0.08, 0.08) * xx
    img = np.clip(img, 0.0, None)
    for _ in range(int(rng.integers(2, 8))):
        _stamp(img, *_stroke(rng, size))
    for _ in range(int(rng.integers(0, 4))):
        _stamp(img, *_blob(rng, size))
    for _ in range(int(rng.integers(0, 4))):
        _stamp(img, *_fragment(rng, scans[rng.choice(pool)], (lo_px, hi_px), size))

    # Digits: sizes drawn first, placed largest first without overlapping (2 px gap).
    n_digits = int(rng.integers(params['min_digits'], params['max_digits'] + 1))
    sources = rng.choice(pool, n_digits)
    sizes = rng.integers(lo_px, hi_px + 1, n_digits)
    aspects = rng.uniform(0.85, 1.15, n_digits)
    amps = rng.uniform(0.7, 1.0, n_digits)
    placed: List[Tuple[int, int, int, int]] = []
    anns = []
    for i in np.argsort(-sizes, kind='stable'):
        h = int(sizes[i])
        w = int(np.clip(round(h * aspects[i]), lo_px, hi_px))
        pos = None
        for _ in range(50):
            y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            if all(y + h + 2 <= py or py + ph + 2 <= y or x + w + 2 <= px or px + pw + 2 <= x
                   for py, px, ph, pw in placed):
                pos = (y, x)
                break
        if pos is None:  # canvas too crowded for this digit: leave it out
            continue
        y, x = pos
        placed.append((y, x, h, w))
        patch = _resize(scans[sources[i]], h, w)
        ink = patch >= INK_THRESHOLD
        rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
        _stamp(img, amps[i] * patch, y, x)
        bx, by = x + int(cols[0]), y + int(rows[0])
        bw, bh = int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
        ann = dict(category_id=int(labels[sources[i]]) + 1, bbox=[bx, by, bw, bh],
                   area=bw * bh, iscrowd=0, source_index=int(sources[i]), digit_size=[h, w])
        if params.get('with_masks', False):
            ann['segmentation'] = _ink_rle(ink, y, x, (bx, by, bw, bh), size)
        anns.append(ann)
    img = img + rng.normal(0.0, rng.uniform(0.01, 0.05), img.shape)
    return np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8), anns


def _ink_rle(ink: np.ndarray, y: int, x: int, box: Tuple[int, int, int, int],
             size: int) -> Dict[str, Any]:
    """COCO RLE of a digit's ink pixels (``ink`` placed at (y, x)), clipped to its box."""
    full = np.zeros((size, size), dtype=np.uint8)
    h, w = ink.shape
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, size), min(x + w, size)
    full[y0:y1, x0:x1] = ink[y0 - y:y1 - y, x0 - x:x1 - x]
    bx, by, bw, bh = box
    clip = np.zeros_like(full)
    clip[by:by + bh, bx:bx + bw] = 1
    rle = mask_utils.encode(np.asfortranarray(full & clip))
    return dict(size=[int(v) for v in rle['size']], counts=rle['counts'].decode('ascii'))


def build_digits_det(root: str = 'data/digits_det', n_train: int = 3000, n_calib: int = 500,
                     n_val: int = 500, canvas: int = 128, seed: int = 0, min_digits: int = 1,
                     max_digits: int = 6, digit_size: Sequence[int] = (14, 40),
                     with_masks: bool = False, force: bool = False, logger: Optional[Any] = None,
                     progress_interval: float = 2.0) -> Dict[str, str]:
    """Build DigitsDet in ``root`` (or reuse the identical build); return the paths ``root``,
    ``meta``, ``{split}_ann`` and ``{split}_img``.

    Args:
        root: Output folder.
        n_train, n_calib, n_val: Images per split.
        canvas: Image side in pixels.
        seed: Seed of every random draw.
        min_digits, max_digits: Digits per image (fewer when the canvas is crowded).
        digit_size: ``(min_px, max_px)`` of the upscaled scan side.
        with_masks: Also write each digit's ink mask (COCO RLE ``segmentation``).
        force: Replace a different or partial build in ``root``.
        logger, progress_interval: Object with ``info(str)`` for progress; seconds between lines.
    """
    params = _check_params(n_train, n_calib, n_val, canvas, seed, min_digits, max_digits,
                           digit_size, with_masks)
    paths = _paths(root)
    state, detail = digits_det_status(root, params)
    if state == 'same' and not force:
        if logger is not None:
            logger.info(f'DigitsDet: {detail}; nothing to do.')
        return paths
    if state in ('different', 'partial') and not force:
        raise RuntimeError(f'DigitsDet folder {root!r}: {detail}. ' +
                           _REBUILD_HINT.format(root=root))
    if state != 'absent':
        _remove_build(paths)

    start = time.perf_counter()
    digits = load_digits()
    scans = digits.images.astype(np.float64) / 16.0
    labels = digits.target.astype(np.int64)
    pools = _stratified_pools(labels, seed)
    sha = hashlib.sha256()
    sha.update(json.dumps(params, sort_keys=True).encode())
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    counts = {}
    progress = None
    if logger is not None:
        total = sum(params[f'n_{split}'] for split in DIGITS_DET_SPLITS)
        progress = EtaProgress(max(1, total), f'DigitsDet: building {root}', log=logger.info,
                               interval=progress_interval)
    for split_id, split in enumerate(DIGITS_DET_SPLITS):
        os.makedirs(paths[f'{split}_img'], exist_ok=True)
        images, annotations = [], []
        for i in range(params[f'n_{split}']):
            rng = np.random.default_rng([seed, split_id, i])
            img, anns = _render_image(rng, params, scans, labels, pools[split])
            Image.fromarray(img, mode='L').save(osp.join(paths[f'{split}_img'], _file_name(i)),
                                                format='PNG', compress_level=1)
            sha.update(img.tobytes())
            images.append(dict(id=i + 1, file_name=_file_name(i), width=canvas, height=canvas))
            for ann in anns:
                annotations.append(dict(id=len(annotations) + 1, image_id=i + 1, **ann))
            if progress is not None:
                progress.update(note=f'({split} split)')
        coco = dict(
            info=dict(description=f'DigitsDet {split} split (generator v{DIGITS_DET_VERSION})',
                      params=params, source='sklearn.datasets.load_digits',
                      scan_pool_size=int(len(pools[split]))),
            images=images, annotations=annotations,
            categories=[dict(id=c + 1, name=name, supercategory='digit')
                        for c, name in enumerate(DIGITS_DET_CLASSES)])
        text = json.dumps(coco, sort_keys=True, separators=(',', ':'))
        sha.update(text.encode())
        with open(paths[f'{split}_ann'], 'w') as f:
            f.write(text)
        counts[split] = dict(images=len(images), boxes=len(annotations))
    meta = dict(params=params, content_sha256=sha.hexdigest(), counts=counts,
                source='sklearn.datasets.load_digits (1797 8x8 scans)')
    with open(paths['meta'] + '.tmp', 'w') as f:
        json.dump(meta, f, sort_keys=True, indent=1)
    os.replace(paths['meta'] + '.tmp', paths['meta'])  # written last: marks a full build
    if logger is not None:
        logger.info(f'DigitsDet: built {counts} in {root} in '
                    f'{time.perf_counter() - start:.1f} s (seed {seed}).')
    return paths


def _remove_build(paths: Dict[str, str]) -> None:
    """Remove only the files and folders a DigitsDet build writes."""
    for key in ('meta', *[f'{s}_ann' for s in DIGITS_DET_SPLITS]):
        for p in (paths[key], paths[key] + '.tmp'):
            if osp.isfile(p):
                os.remove(p)
    for split in DIGITS_DET_SPLITS:
        if osp.isdir(paths[f'{split}_img']):
            shutil.rmtree(paths[f'{split}_img'])


_BUILD_KEYS = ('n_train', 'n_calib', 'n_val', 'canvas', 'seed', 'min_digits', 'max_digits',
               'digit_size', 'with_masks')


@DATASETS.register_module()
class DigitsDetDataset(CocoDataset):
    """DigitsDet (a :class:`mmdet.datasets.CocoDataset`, ``**kwargs`` passed on) built in
    ``data_root`` on first use from ``build_cfg`` (:func:`build_digits_det` arguments) when the
    folder is empty and ``auto_build``; a different or partial build is refused with how to rebuild.
    """

    METAINFO = {
        'classes': DIGITS_DET_CLASSES,
        'palette': [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
                    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
                    (210, 245, 60), (250, 190, 212)],
    }

    def __init__(self, data_root: str = 'data/digits_det',
                 build_cfg: Optional[Dict[str, Any]] = None, auto_build: bool = True,
                 **kwargs) -> None:
        if not isinstance(data_root, str) or not data_root:
            raise ValueError('DigitsDetDataset: data_root must be a non-empty folder path '
                             f'(e.g. "data/digits_det"), got {data_root!r}.')
        build_cfg = dict(build_cfg or {})
        unknown = sorted(set(build_cfg) - set(_BUILD_KEYS))
        if unknown:
            raise TypeError(f'DigitsDetDataset: unknown build_cfg keys {unknown}; allowed '
                            f'keys are {list(_BUILD_KEYS)}.')
        self.build_cfg = build_cfg
        self._ensure_built(data_root, build_cfg, auto_build)
        super().__init__(data_root=data_root, **kwargs)

    @staticmethod
    def _ensure_built(root: str, build_cfg: Dict[str, Any], auto_build: bool) -> None:
        """Build ``root`` if it is empty, check it otherwise (see class docstring)."""
        sig = inspect.signature(build_digits_det).parameters
        defaults = {k: sig[k].default for k in _BUILD_KEYS}
        params = _check_params(**{**defaults, **build_cfg})
        logger = MMLogger.get_current_instance()
        rank, world_size = get_dist_info()
        if rank == 0:  # only one process writes; the others wait and then check
            state, detail = digits_det_status(root, params)
            if state == 'absent':
                if not auto_build:
                    raise FileNotFoundError(
                        f'DigitsDet: {detail} and auto_build=False. Build it with `python '
                        f'tools/build_digits_det.py --root {root}` or set auto_build=True.')
                logger.info(f'DigitsDet: {detail}; building it now (one-off, seconds) '
                            f'with {params}.')
                build_digits_det(root, logger=logger, **{**defaults, **build_cfg})
        if world_size > 1:
            barrier()
        state, detail = digits_det_status(root, params)
        if state != 'same':
            raise RuntimeError(f'DigitsDet folder {root!r}: {detail}. ' +
                               _REBUILD_HINT.format(root=root))
