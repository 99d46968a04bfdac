#!/bin/sh
# Assemble torchvision's TestDeformConv harness in DIR (default: ./tv_suite), outside the repo.
#   TV_SRC: a checkout of pytorch/vision (its test/test_ops.py and test/common_utils.py are used
#           as they are; read at index commits 00673be / 01d3452 when this was set up);
#   TV_WHEEL: a torchvision 0.28 wheel, for its pure-Python models/feature_extraction.py.
# Nothing of torchvision is copied into the repo: this script copies it into DIR.
set -e
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-tv_suite}
: "${TV_SRC:?set TV_SRC to a pytorch/vision checkout}"
: "${TV_WHEEL:?set TV_WHEEL to a torchvision-0.28 wheel file}"
mkdir -p "$dir/test"
cp -r "$here/stubs" "$dir/"
cp "$TV_SRC/test/test_ops.py" "$TV_SRC/test/common_utils.py" "$dir/test/"
cp "$here/conftest.py" "$dir/test/conftest.py"
unzip -p "$TV_WHEEL" torchvision/models/feature_extraction.py \
    > "$dir/stubs/torchvision/models/feature_extraction.py"
python -c "
from torch.testing._internal.optests.generate_tests import FailuresDict
FailuresDict('$dir/test/optests_failures_dict.json', {}).save()"
echo "run: cd $dir/test && PYTHONPATH=../stubs:<omniconv>/src python -m pytest test_ops.py -k TestDeformConv -rs"
