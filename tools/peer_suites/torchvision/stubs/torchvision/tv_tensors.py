import enum


class BoundingBoxFormat(enum.Enum):
    XYXY = "XYXY"
    XYWH = "XYWH"
    CXCYWH = "CXCYWH"
    XYWHR = "XYWHR"
    CXCYWHR = "CXCYWHR"
    XYXYXYXY = "XYXYXYXY"


def _stub(*args, **kwargs):
    raise NotImplementedError("stub: torchvision.tv_tensors is not available here")


Image = Video = Mask = BoundingBoxes = KeyPoints = is_rotated_bounding_format = _stub
