"""Settings a script makes after importing torch are what the record and metrics report."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_perfscope

SCRIPT = """
import torch
torch.set_num_threads(3)                      # after the import: perfscope must see 3
torch.backends.cudnn.benchmark = True
torch.set_float32_matmul_precision("high")
model = torch.nn.Linear(8, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(6):
    opt.zero_grad()
    model(torch.randn(4, 8)).sum().backward()
    opt.step()
"""


def test_settings_made_after_import_are_read_at_the_third_step(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)

    result = run_perfscope(
        ["run", "-q", "--no-pyspy", "--no-trace", "train.py"], cwd=tmp_path, run_dir=tmp_path / "r"
    )

    assert result.returncode == 0, result.stderr.decode()
    torch_env = result.record["environment"]["torch"]
    assert torch_env["threads"] == 3  # OMP_NUM_THREADS=1 at import
    assert torch_env["float32_matmul_precision"] == "high"
    metrics = result.record["metrics"]
    assert metrics["host.torch_threads"] == 3.0
    assert (metrics["env.cudnn_benchmark"], metrics["env.tf32_matmul"]) == (1.0, 1.0)
