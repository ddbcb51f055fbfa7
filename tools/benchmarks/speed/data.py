"""Synthetic COCO-like batches for the benchmarks (no data set needed)."""
import torch

__all__ = ['random_rois', 'synthetic_batch']


def synthetic_batch(batch: int, height: int, width: int, num_classes: int,
                    boxes_per_image: int = 8, seed: int = 0) -> dict:
    """A COCO-like raw batch: uint8 images and random boxes/labels (before preprocessing).

    Args:
        batch: Images in the batch.
        height: Image height.
        width: Image width.
        num_classes: Labels are drawn from ``[0, num_classes)``.
        boxes_per_image: Ground-truth boxes per image (COCO averages about 7).
        seed: Seed.

    Returns:
        ``dict(inputs=[uint8 (3, H, W)], data_samples=[DetDataSample])``, as a detection
        dataloader yields it.
    """
    from mmengine.structures import InstanceData

    from mmdet.structures import DetDataSample
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width), generator=g, dtype=torch.uint8))
        wh = torch.rand(boxes_per_image, 2, generator=g) * torch.tensor(
            [width / 2, height / 2]) + 8
        xy = torch.rand(boxes_per_image, 2, generator=g) * (
            torch.tensor([width, height]) - wh)
        s = DetDataSample(metainfo=dict(img_id=i, img_shape=(height, width),
                                        ori_shape=(height, width), scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], dim=1),
            labels=torch.randint(0, num_classes, (boxes_per_image,), generator=g))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def random_rois(batch: int, height: int, width: int, per_image: int, seed: int = 0,
                device: str = 'cpu') -> torch.Tensor:
    """``(batch * per_image, 5)`` RoIs ``(image index, x1, y1, x2, y2)`` inside the image.

    Args:
        batch: Images.
        height: Image height.
        width: Image width.
        per_image: RoIs per image.
        seed: Seed.
        device: Device of the result.

    Returns:
        The RoIs, image by image.
    """
    g = torch.Generator().manual_seed(seed)
    wh = torch.rand(batch * per_image, 2, generator=g) * torch.tensor([width / 2, height / 2]) + 4
    xy = torch.rand(batch * per_image, 2, generator=g) * (torch.tensor([width, height]) - wh)
    idx = torch.arange(batch).repeat_interleave(per_image).float()[:, None]
    return torch.cat([idx, xy, xy + wh], dim=1).to(device)
