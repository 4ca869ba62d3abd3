"""Metric logging: one JSON object per line in `metrics.jsonl`, and TensorBoard event files."""

import json
import logging
import math
import os
import sys
from collections.abc import Mapping

METRICS_FILE = 'metrics.jsonl'
log = logging.getLogger(__name__)


def _tensorboardx_writer() -> type:
    """tensorboardX's SummaryWriter, imported without torch where torch is not loaded yet: tensorboardX imports
    torch at import time where it is installed, only to accept torch tensors, which we never pass (1 s of every
    run's start; 0.14 s without). `sys.modules['torch'] = None` makes its `import torch` fail as where torch is
    not installed, and is removed at once, so a later `import torch` loads torch as usual."""
    if 'torch' in sys.modules:
        from tensorboardX import SummaryWriter
        return SummaryWriter
    sys.modules['torch'] = None
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules['torch']
    return SummaryWriter


class MetricWriter:
    """Writes scalar metrics of process 0 to `<workdir>/metrics.jsonl` and `<workdir>/tensorboard/`."""

    def __init__(self, workdir: str, *, tensorboard: bool = True, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = os.path.join(workdir, METRICS_FILE)
        self._tb = None
        if enabled:
            os.makedirs(workdir, exist_ok=True)
            if tensorboard:
                try:
                    writer_class = _tensorboardx_writer()
                except ImportError:
                    # An image without it (a GPU machine that installs nothing) still trains; say so once.
                    log.warning('tensorboardX is not installed: metrics go to %s only (pip install tensorboardX, '
                                'or runtime.tensorboard=False to silence this)', self.path)
                else:
                    self._tb = writer_class(os.path.join(workdir, 'tensorboard'))

    def truncate_after(self, step: int) -> None:
        """Drops lines logged after `step`: a resumed run rewrites what the killed one had logged."""
        if not self.enabled or not os.path.exists(self.path):
            return
        with open(self.path) as f:
            lines = [line for line in f if line.strip()]
        kept = []
        for line in lines:
            try:
                if json.loads(line).get('step', 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut off by a kill
        with open(self.path + '.tmp', 'w') as f:
            f.writelines(kept)
        os.replace(self.path + '.tmp', self.path)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Appends `metrics` at `step` (non-finite values are written as strings in the JSON)."""
        if not self.enabled:
            return
        record = {'step': int(step)}
        for name, value in metrics.items():
            value = float(value)
            record[name] = value if math.isfinite(value) else str(value)
            if self._tb is not None:
                self._tb.add_scalar(name, value, int(step))
        with open(self.path, 'a') as f:
            f.write(json.dumps(record) + '\n')
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
