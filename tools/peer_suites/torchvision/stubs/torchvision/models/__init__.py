def mobilenet_v3_large(*args, **kwargs):
    raise NotImplementedError("stub: torchvision.models is not available here")
