"""The torch settings the loop really runs with: intra-op threads, cudnn.benchmark, TF32.

Scripts often set these after `import torch` (torch.set_num_threads, cudnn.benchmark = True), so
the values read at import are not the ones the steps use: they are read once, at the third step,
and written as one `settings` event.
"""

from __future__ import annotations

import time
from typing import Any

from perfscope.runtime.session import ProcessSession

READ_AT_STEP = 3


def install(torch: Any, session: ProcessSession) -> None:
    def on_step(index: int) -> None:
        if index < READ_AT_STEP:
            return
        session.remove_step_listener(on_step)
        session.writer.write({"k": "settings", "ts": time.perf_counter(), **read_settings(torch)})

    session.step_listeners.append(on_step)


def read_settings(torch: Any) -> dict[str, Any]:
    cudnn = torch.backends.cudnn
    return {
        "threads": torch.get_num_threads(),
        "cudnn_benchmark": bool(cudnn.benchmark),
        "cudnn_allow_tf32": bool(cudnn.allow_tf32),
        # "highest" keeps float32 matmuls in full fp32; "high"/"medium" allow TF32/bf16 passes.
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
