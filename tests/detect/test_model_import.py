"""Loading the risk model costs what the model needs, not what happens to be installed beside scikit-learn."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch (the [hf] extra) is not installed")
def test_loading_the_risk_model_leaves_torch_unimported_and_importable() -> None:
    code = (
        "import sys\n"
        "from distillguard.detect.model import RiskModel\n"
        "RiskModel.load()\n"
        "print('torch' in sys.modules)\n"
        "import torch\n"
        "print(torch.tensor([1.0]).sum().item())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["False", "1.0"]
