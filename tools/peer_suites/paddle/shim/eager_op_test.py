from op_test import *  # noqa
from op_test import OpTest  # noqa
