"""The collectors the supervisor runs beside the script (the in-process ones live in runtime/)."""

from __future__ import annotations

from perfscope.collectors.base import Collector
from perfscope.options import CollectorOptions


def supervisor_collectors(options: CollectorOptions) -> list[Collector]:
    """Every out-of-process collector, each deciding for itself whether it can work here."""
    from perfscope.collectors.gpu import GpuCollector
    from perfscope.collectors.host import HostCollector
    from perfscope.collectors.pyspy import PySpyCollector

    return [
        HostCollector(options.host_interval_s),
        PySpyCollector(options),
        GpuCollector(options.gpu_interval_s),
    ]
