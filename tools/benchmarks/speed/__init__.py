"""Speed benchmark helpers (tools/benchmarks/): synthetic batches, model pairs, timed training
steps, the peers' distillers.

``tools/benchmarks/*.py`` are thin command lines over this package. Importing it needs torch;
the functions that build detectors import MMDetection (and, for the MMRazor comparison, MMRazor)
when called.
"""
from .calibration_pass import bench_calibration_pass
from .data import random_rois, synthetic_batch
from .memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss
from .models import (PAIRS, build_distiller, build_pair, build_student, distill_losses_for,
                     load_model_cfg, num_classes_of, save_random_teacher, shrink_model_cfg)
from .step import TrainStep, tensor_bytes
from .timing import (cuda_peak_above_base, process_usage, ratio_summary, summarize, synchronize,
                     time_interleaved)

__all__ = ['PAIRS', 'TrainStep', 'bench_calibration_pass', 'build_distiller', 'build_pair',
           'build_student', 'cuda_peak_above_base', 'current_rss_bytes', 'distill_losses_for',
           'load_model_cfg', 'num_classes_of', 'peak_rss_bytes', 'process_usage', 'random_rois',
           'ratio_summary', 'reset_peak_rss', 'save_random_teacher', 'shrink_model_cfg',
           'summarize', 'synchronize', 'synthetic_batch', 'tensor_bytes', 'time_interleaved']
