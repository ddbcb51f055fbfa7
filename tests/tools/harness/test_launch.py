"""tools.harness.launch: the process group of a distributed run is torn down at its end."""
import torch.distributed as dist

from tools.harness.launch import end_distributed


def test_end_distributed_destroys_the_process_group(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        assert dist.is_initialized()
        end_distributed()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    end_distributed()  # a run without a process group: nothing to do
    assert not dist.is_initialized()
