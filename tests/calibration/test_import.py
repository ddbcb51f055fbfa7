"""mmkdcal.calibration works on a machine without MMDetection/MMEngine/MMCV/matplotlib."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r'''
import sys
for name in ('mmdet', 'mmengine', 'mmcv', 'matplotlib'):
    sys.modules[name] = None  # any import of these now raises ImportError
import torch
import mmkdcal.calibration as cal
p = torch.tensor([[0.9, 0.1], [0.3, 0.7]])
print(round(cal.ece(p, torch.tensor([0, 0]), n_bins=2), 6))
print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in
             ('mmdet', 'mmengine', 'mmcv', 'matplotlib') and sys.modules[m] is not None))
'''


def test_calibration_imports_without_openmmlab_or_matplotlib():
    out = subprocess.run([sys.executable, '-c', SCRIPT], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    # both top-label confidences (0.9 right, 0.7 wrong) fall in [.5, 1): |0.5 - 0.8| = 0.3
    assert lines == ['0.3', '[]']


BROKEN = r'''
import warnings
import torch
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    import mmkdcal.calibration as cal
print(round(cal.ece(torch.tensor([[0.9, 0.1], [0.3, 0.7]]), torch.tensor([0, 0]), n_bins=2), 6))
print(any('MMDetection parts are not registered' in str(w.message) for w in caught))
try:
    import mmkdcal.models  # noqa: F401
except ImportError as exc:
    print('refused:', 'needs a working MMDetection stack' in str(exc), 'mmcv' in str(exc))
import importlib
import sys
for part in ('datasets', 'engine', 'evaluation', 'models.losses', 'models.contract'):
    try:
        importlib.import_module('mmkdcal.' + part)
        print(part, 'imported')
    except ImportError as exc:
        print(part, str(exc).startswith('mmkdcal.' + part.split('.')[0] + ' needs a working'))
print(sorted(m for m in sys.modules if m.startswith(('mmdet', 'mmengine'))))
'''


def test_calibration_imports_when_mmdet_is_installed_but_mmcv_is_broken(tmp_path):
    """mmdet findable, mmcv's import failing (e.g. built without its ops): calibration still
    imports, a warning says why, and the OpenMMLab parts refuse with the reason."""
    fake = tmp_path / 'mmcv'
    fake.mkdir()
    (fake / '__init__.py').write_text("raise ImportError('mmcv._ext: compiled ops missing')\n")
    out = subprocess.run([sys.executable, '-c', BROKEN], cwd=ROOT, capture_output=True,
                         text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=f'{tmp_path}{os.pathsep}{ROOT}'))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split('\n')[:3] == ['0.3', 'True', 'refused: True True']
    # every OpenMMLab part refuses, naming itself, and nothing of OpenMMLab got imported
    assert out.stdout.split('\n')[3:9] == [
        'datasets True', 'engine True', 'evaluation True', 'models.losses True',
        'models.contract True', '[]']
