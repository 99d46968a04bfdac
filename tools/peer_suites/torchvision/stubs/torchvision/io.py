def write_video(*args, **kwargs):
    raise NotImplementedError("stub: torchvision.io is not available here")
