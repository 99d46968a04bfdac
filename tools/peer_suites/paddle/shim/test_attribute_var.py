import unittest


class UnittestBase(unittest.TestCase):
    def setUp(self):
        raise unittest.SkipTest(
            "static-graph Program with a Tensor output_size, SGD.minimize and "
            "save_inference_model: omniconv has no static graph / inference model"
        )
