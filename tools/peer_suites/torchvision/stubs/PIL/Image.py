class Image:
    """stub: PIL is not installed here"""


def open(*args, **kwargs):
    raise NotImplementedError("stub: PIL is not installed here")


def fromarray(*args, **kwargs):
    raise NotImplementedError("stub: PIL is not installed here")
