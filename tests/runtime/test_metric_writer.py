"""gen_runtime/metric_writer.py: metrics.jsonl and TensorBoard's event file, with tensorboardX imported without
torch (in a fresh interpreter, as main.py starts) and torch importable as usual afterwards."""

import json

from tests.conftest import run_python

WRITE_THEN_IMPORT_TORCH = """
import os, sys
from gen_runtime.metric_writer import MetricWriter
writer = MetricWriter(sys.argv[1], tensorboard=True)
writer.write(3, {'loss': 1.5, 'bad': float('nan')})
writer.close()
torch_after_writer = 'torch' in sys.modules
import torch
print(torch_after_writer, torch.tensor([2.0]).sum().item(), os.listdir(os.path.join(sys.argv[1], 'tensorboard')))
"""


def test_metrics_and_event_file_are_written_without_loading_torch(tmp_path):
    proc = run_python(['-c', WRITE_THEN_IMPORT_TORCH, str(tmp_path)])
    torch_after_writer, total, events = proc.stdout.split(' ', 2)
    assert torch_after_writer == 'False' and float(total) == 2.0 and 'events.out.tfevents' in events
    (event_file,) = (tmp_path / 'tensorboard').iterdir()
    assert b'loss' in event_file.read_bytes()
    assert [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()] == \
        [{'step': 3, 'loss': 1.5, 'bad': 'nan'}]


def test_a_process_that_loaded_torch_keeps_it(tmp_path):
    proc = run_python(['-c', 'import sys, torch\nfrom gen_runtime.metric_writer import MetricWriter\n'
                       'MetricWriter(sys.argv[1], tensorboard=True).close()\n'
                       'print(sys.modules["torch"] is torch)', str(tmp_path)])
    assert proc.stdout.strip() == 'True'
