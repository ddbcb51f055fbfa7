"""Version of mmkdcal and the pinned stack it is tested with."""
__version__ = '0.1.0'

#: The stack mmkdcal is tested on; :mod:`mmkdcal.utils.stack` checks the installed versions
#: against the ranges in :data:`REQUIRED`.
PINNED = {'torch': '2.13.0', 'mmengine': '0.10.7', 'mmcv': '2.1.0', 'mmdet': '3.3.0'}

#: (minimum inclusive, maximum exclusive) accepted at import time. torch 1.13 is accepted for the
#: benchmark-only environment in which MMRazor runs beside mmkdcal
#: (``tools/benchmarks/setup_peer_env.sh``); there, checkpoints load with ``weights_only=True``
#: but without the allow-list (torch < 2.4 cannot extend it; see ``mmkdcal.utils.checkpoint``).
REQUIRED = {'torch': ('1.13.0', '2.14.0'), 'mmengine': ('0.10.0', '0.11.0'),
            'mmcv': ('2.0.0', '2.2.0'), 'mmdet': ('3.3.0', '3.4.0')}
