import torch

IS_CUDA_AVAILABLE = torch.cuda.is_available()
IS_MLU_AVAILABLE = False
IS_MUSA_AVAILABLE = False
IS_NPU_AVAILABLE = False
IS_MPS_AVAILABLE = False
