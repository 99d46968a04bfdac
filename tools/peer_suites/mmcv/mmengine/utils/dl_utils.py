import torch

TORCH_VERSION = torch.__version__
